package awstest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// authError is why a request's signature was refused, in the service's own error codes.
type authError struct {
	status     int
	code, msg  string
	unexpected bool // a client bug worth failing the test for, not a scenario the test set up
}

// signer re-signs requests to check them; it is safe for concurrent use.
var signer = v4.NewSigner()

// authenticate checks a request's SigV4 signature as AWS would: the key must be one the fake
// knows (the base key, or temporary credentials STS issued, with their session token), the
// credential scope must name the service and region, and the signature must match the one
// computed over the method, path, signed headers and body. It returns the key and, for
// temporary credentials, the role they belong to.
func (e *Env) authenticate(r *http.Request, body []byte, svc string) (key, role string, ae *authError) {
	query := svc == "sts"
	fail := func(code, msg string, unexpected bool) (string, string, *authError) {
		status := http.StatusBadRequest
		if query {
			status = http.StatusForbidden
		} else if code == "SignatureDoesNotMatch" {
			code = "InvalidSignatureException" // the JSON services' name for it
		}
		return key, role, &authError{status: status, code: code, msg: msg, unexpected: unexpected}
	}
	auth := r.Header.Get("Authorization")
	fields, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		if query {
			return fail("MissingAuthenticationToken", "Request is missing Authentication Token", true)
		}
		return fail("MissingAuthenticationTokenException", "Missing Authentication Token", true)
	}
	parts := map[string]string{}
	for f := range strings.SplitSeq(fields, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		parts[k] = v
	}
	scope := strings.Split(parts["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return fail("IncompleteSignature", "Authorization header requires a valid Credential", true)
	}
	key = scope[0]
	creds := aws.Credentials{AccessKeyID: key}
	switch {
	case key == AccessKeyID:
		creds.SecretAccessKey = SecretAccessKey
	default:
		iss, ok := e.STS.lookup(key)
		if !ok {
			if query {
				return fail("InvalidClientTokenId", "The security token included in the request is invalid.", false)
			}
			return fail("UnrecognizedClientException", "The security token included in the request is invalid.", false)
		}
		role = iss.role
		creds.SecretAccessKey, creds.SessionToken = iss.secret, iss.token
		if r.Header.Get("X-Amz-Security-Token") != iss.token {
			return fail("InvalidClientTokenId", "The security token included in the request is invalid.", true)
		}
	}
	if want := e.models[svc].signingName(); scope[3] != want || scope[2] != Region {
		return fail("SignatureDoesNotMatch", "Credential should be scoped to a valid region and service "+want, true)
	}
	signingTime, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || signingTime.Format("20060102") != scope[1] {
		return fail("IncompleteSignature", "X-Amz-Date is missing or does not match the credential scope", true)
	}
	// Re-sign a copy carrying only the headers the client said it signed.
	check, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return fail("IncompleteSignature", err.Error(), true)
	}
	for h := range strings.SplitSeq(parts["SignedHeaders"], ";") {
		switch h {
		case "host":
		case "content-length":
			check.ContentLength = r.ContentLength
		default:
			check.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	err = signer.SignHTTP(context.Background(), creds, check, hex.EncodeToString(sum[:]), scope[3], scope[2], signingTime)
	if err != nil || check.Header.Get("Authorization") != auth {
		return fail("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.", true)
	}
	return key, role, nil
}
