package kube

import (
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Permanent reports whether err is one retrying cannot fix: the API server refused the change
// itself (invalid, forbidden by RBAC, an admission policy or a quota, a bad request), or what it
// names is missing (*NotFoundError, 404). Everything else (timeouts, 429, 5xx, conflicts, a
// connection refused or reset) may pass, and is retried.
func Permanent(err error) bool {
	if err == nil {
		return false
	}
	var nf *NotFoundError
	if errors.As(err, &nf) {
		return true
	}
	return apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) || apierrors.IsNotAcceptable(err) ||
		apierrors.IsUnsupportedMediaType(err) || apierrors.IsRequestEntityTooLargeError(err)
}
