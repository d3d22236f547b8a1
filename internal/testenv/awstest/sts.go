package awstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// STS is the fake STS (awsQuery protocol). Roles are assumable only once allowed; the temporary
// credentials it issues are the only other keys the fake accepts, and calls signed with them
// are recorded with their role.
type STS struct {
	env    *Env
	mu     sync.Mutex
	roles  map[string]string // role ARN -> external id its trust policy requires ("" for none)
	issued map[string]issued // access key id -> temporary credentials
}

// issued is a set of temporary credentials.
type issued struct {
	secret, token, role, session string
}

// maxSession is the roles' MaxSessionDuration, IAM's default.
const maxSession = time.Hour

// Allow lets the base credentials assume a role; when externalID is not empty, the role's trust
// policy requires it.
func (s *STS) Allow(roleARN, externalID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles[roleARN] = externalID
}

// AssumeRoleCalls returns the parameters of every AssumeRole call (RoleArn, RoleSessionName,
// ExternalId, DurationSeconds...).
func (s *STS) AssumeRoleCalls() []url.Values {
	var out []url.Values
	for _, c := range s.env.Calls("AssumeRole") {
		out = append(out, c.Params)
	}
	return out
}

func (s *STS) lookup(key string) (issued, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	iss, ok := s.issued[key]
	return iss, ok
}

// handle answers an STS operation called with the access key key.
func (s *STS) handle(op string, params url.Values, key string) (any, *apiError) {
	iss, temporary := s.lookup(key)
	switch op {
	case "AssumeRole":
		return s.assumeRole(params, iss.role)
	case "GetCallerIdentity":
		r := callerIdentityResult{Arn: "arn:aws:iam::" + Account + ":user/stagecoach", UserID: "AIDASTAGECOACHTEST01", Account: Account}
		if temporary {
			r.Arn, r.UserID, r.Account = assumedArn(iss.role, iss.session), roleID(iss.role)+":"+iss.session, accountOf(iss.role)
		}
		return callerIdentityResponse{Result: r, Meta: responseMetadata{RequestID: requestID()}}, nil
	}
	return nil, &apiError{code: "InvalidAction", msg: "Could not find operation " + op}
}

func (s *STS) assumeRole(params url.Values, callerRole string) (any, *apiError) {
	arn, session := params.Get("RoleArn"), params.Get("RoleSessionName")
	s.mu.Lock()
	defer s.mu.Unlock()
	ext, ok := s.roles[arn]
	caller := "arn:aws:iam::" + Account + ":user/stagecoach"
	if callerRole != "" {
		caller = "arn:aws:sts::" + Account + ":assumed-role/" + callerRole[strings.LastIndex(callerRole, "/")+1:]
	}
	// Role chaining is not allowed here: only the base credentials are trusted by the roles.
	if !ok || callerRole != "" || (ext != "" && ext != params.Get("ExternalId")) {
		return nil, &apiError{code: "AccessDenied", status: http.StatusForbidden,
			msg: fmt.Sprintf("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", caller, arn)}
	}
	duration := maxSession
	if d := params.Get("DurationSeconds"); d != "" {
		n, _ := strconv.Atoi(d)
		duration = time.Duration(n) * time.Second
		if duration > maxSession {
			return nil, &apiError{code: "ValidationError",
				msg: "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."}
		}
	}
	iss := issued{secret: randomHex(20), token: "FwoGZXIvYXdzE" + randomHex(40), role: arn, session: session}
	key := "ASIA" + strings.ToUpper(randomHex(8))
	s.issued[key] = iss
	return assumeRoleResponse{
		Result: assumeRoleResult{
			// The SDK checks expiry by its own clock, not the servers'.
			Credentials: stsCredentials{AccessKeyID: key, SecretAccessKey: iss.secret, SessionToken: iss.token,
				Expiration: time.Now().Add(duration).UTC().Format(time.RFC3339)},
			User: assumedRoleUser{AssumedRoleID: roleID(arn) + ":" + session, Arn: assumedArn(arn, session)},
		},
		Meta: responseMetadata{RequestID: requestID()},
	}, nil
}

// assumedArn is the ARN of a role session.
func assumedArn(roleARN, session string) string {
	return "arn:aws:sts::" + accountOf(roleARN) + ":assumed-role/" + roleARN[strings.LastIndex(roleARN, "/")+1:] + "/" + session
}

// roleID is a stable unique id for a role, like IAM's AROA ids.
func roleID(roleARN string) string { return "AROA" + strings.ToUpper(digest(roleARN)[7:23]) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type assumeRoleResponse struct {
	XMLName xml.Name         `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleResponse"`
	Result  assumeRoleResult `xml:"AssumeRoleResult"`
	Meta    responseMetadata `xml:"ResponseMetadata"`
}

type assumeRoleResult struct {
	Credentials stsCredentials  `xml:"Credentials"`
	User        assumedRoleUser `xml:"AssumedRoleUser"`
}

type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumedRoleUser struct {
	AssumedRoleID string `xml:"AssumedRoleId"`
	Arn           string `xml:"Arn"`
}

type callerIdentityResponse struct {
	XMLName xml.Name             `xml:"https://sts.amazonaws.com/doc/2011-06-15/ GetCallerIdentityResponse"`
	Result  callerIdentityResult `xml:"GetCallerIdentityResult"`
	Meta    responseMetadata     `xml:"ResponseMetadata"`
}

type callerIdentityResult struct {
	Arn     string `xml:"Arn"`
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
}

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}
