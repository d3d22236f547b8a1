package access

import (
	"context"
	"slices"
	"testing"
)

func TestViewer(t *testing.T) {
	v := New("alice", "", []Grant{{Repo: "Acme/App", Audit: true}, {Repo: "acme/lib"}})
	for _, tt := range []struct {
		repo        string
		read, audit bool
	}{
		{"acme/app", true, true}, {"ACME/APP", true, true}, {"acme/lib", true, false}, {"acme/other", false, false}, {"", false, false},
	} {
		if v.CanRead(tt.repo) != tt.read || v.CanAudit(tt.repo) != tt.audit {
			t.Errorf("%q: read %v audit %v, want %v %v", tt.repo, v.CanRead(tt.repo), v.CanAudit(tt.repo), tt.read, tt.audit)
		}
	}
	if got := v.Repos(); !slices.Equal(got, []string{"Acme/App", "acme/lib"}) {
		t.Errorf("Repos = %v", got)
	}
	if got := v.AuditRepos(); !slices.Equal(got, []string{"Acme/App"}) {
		t.Errorf("AuditRepos = %v", got)
	}
	if v.All() {
		t.Error("a person reads everything")
	}
}

// TestNobodyReadsNothing: a request without a viewer, or a viewer granted nothing, reads
// nothing, and its repository filter keeps nothing rather than everything.
func TestNobodyReadsNothing(t *testing.T) {
	for _, v := range []*Viewer{nil, New("x", "", nil), {}} {
		if v.CanRead("acme/app") || v.CanAudit("acme/app") || v.All() {
			t.Errorf("%+v reads something", v)
		}
		if r := v.Repos(); r == nil || len(r) != 0 {
			t.Errorf("%+v: Repos = %#v, want an empty, non-nil list", v, r)
		}
	}
	if From(context.Background()) != nil {
		t.Error("a bare context carries a viewer")
	}
	e := Everything()
	if got := From(WithViewer(context.Background(), e)); got != e || !got.CanRead("any/thing") || !got.CanAudit("any/thing") {
		t.Error("the local trial's viewer does not read everything")
	}
}
