package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestChaosCommandRefusesBadFlags: mistakes on the command line are usage errors (exit code 2),
// found before PostgreSQL or a control plane is started. The run itself is tested in
// internal/testenv/chaos.
func TestChaosCommandRefusesBadFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"chaos", "extra"}, "no arguments"},
		{[]string{"chaos", "--pushes", "4"}, "--pushes must be at least 8"},
		{[]string{"chaos", "--replicas", "0"}, "--replicas must be at least 1"},
		{[]string{"chaos", "--kill-every", "-1s"}, "--kill-every not negative"},
		{[]string{"chaos", "--frobnicate"}, "flag provided but not defined"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errs bytes.Buffer
			err := run(context.Background(), tt.args, func(string) string { return "" }, &out, &errs)
			if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v (exit %d), want a usage error saying %q", err, exitCode(err), tt.want)
			}
		})
	}
}
