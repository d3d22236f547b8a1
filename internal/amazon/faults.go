package amazon

import (
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// transientCodes are 4xx answers that still pass: CodeBuild's limit on concurrent builds, and
// expired temporary credentials, which the SDK renews on the next call.
var transientCodes = map[string]bool{
	"AccountLimitExceededException": true,
	"ExpiredToken":                  true,
	"ExpiredTokenException":         true,
	"IDPCommunicationError":         true,
}

// Permanent reports whether err is one retrying cannot fix: AWS refused the request itself
// (access denied, no such project, invalid input: a 4xx that is not throttling), something is
// missing (*NotFoundError), or an image copy must not go on (*RefusedError). Everything else (throttling, 5xx, timeouts, a connection
// refused or reset, an error without an AWS answer) may pass, and is retried.
func Permanent(err error) bool {
	if err == nil {
		return false
	}
	var nf *NotFoundError
	var refused *RefusedError
	if errors.As(err, &nf) || errors.As(err, &refused) {
		return true
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	code := ae.ErrorCode()
	if _, ok := retry.DefaultThrottleErrorCodes[code]; ok {
		return false
	}
	if _, ok := retry.DefaultRetryableErrorCodes[code]; ok || transientCodes[code] {
		return false
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status := re.HTTPStatusCode()
		return status >= 400 && status < 500 && status != 408 && status != 429
	}
	return ae.ErrorFault() == smithy.FaultClient
}
