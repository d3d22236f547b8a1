package kube

import (
	"errors"
	"fmt"
	"net"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TestPermanentTellsRefusalsFromFaults: a change the API server refuses for good fails the
// step at once (and rolls back); overload, timeouts and an unreachable server are retried.
func TestPermanentTellsRefusalsFromFaults(t *testing.T) {
	deployments := schema.GroupResource{Group: "apps", Resource: "deployments"}
	wrap := func(err error) error { return fmt.Errorf("setting images on Deployment test/api: %w", err) }
	for _, tt := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"rejected by an admission policy", wrap(apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "worker",
			field.ErrorList{field.Invalid(field.NewPath("spec"), "x", "denied")})), true},
		{"forbidden", wrap(apierrors.NewForbidden(deployments, "api", errors.New("RBAC"))), true},
		{"bad request", wrap(apierrors.NewBadRequest("no")), true},
		{"gone", &NotFoundError{What: "Deployment api", Namespace: "test"}, true},
		{"too many requests", wrap(apierrors.NewTooManyRequests("slow down", 1)), false},
		{"server timeout", wrap(apierrors.NewServerTimeout(deployments, "patch", 1)), false},
		{"internal error", wrap(apierrors.NewInternalError(errors.New("etcd"))), false},
		{"unavailable", wrap(apierrors.NewServiceUnavailable("restarting")), false},
		{"conflict", wrap(apierrors.NewConflict(deployments, "api", errors.New("modified"))), false},
		{"connection refused", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}), false},
		{"no error", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Permanent(tt.err); got != tt.permanent {
				t.Errorf("Permanent(%v) = %v, want %v", tt.err, got, tt.permanent)
			}
		})
	}
}
