package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	"go.yaml.in/yaml/v3"
)

// `stagecoach doctor` as an operator runs it: on a setup that works it prints every check and
// exits 0 (warnings do not fail it); when a part is missing it says which, with the fix, and
// exits 1; --json says the same to machines.
func TestDoctorCommand(t *testing.T) {
	gh := githubtest.New(t, githubtest.WithAppSlug("stagecoach"))
	var m struct {
		Permissions map[string]string `yaml:"default_permissions"`
	}
	b, err := os.ReadFile("../../app.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	gh.SetAppPermissions(m.Permissions)
	env := awstest.New(t)
	awsEnv(t, env)
	env.ECR.AddRepository("123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello")
	kc := kubetest.Start(t)
	dir := t.TempDir()
	cfgFile, keyFile := filepath.Join(dir, "stagecoach.yaml"), filepath.Join(dir, "key.pem")
	// The admin's kubeconfig: it may do everything, which doctor warns of.
	if err := os.WriteFile(cfgFile, fmt.Appendf(nil, appConfig, kc.Kubeconfig(), kubetest.Context, kc.Namespace(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, gh.PrivateKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"STAGECOACH_GITHUB_APP_ID": fmt.Sprint(gh.AppID()), "STAGECOACH_GITHUB_PRIVATE_KEY_FILE": keyFile,
		"STAGECOACH_GITHUB_API_URL": gh.URL()}
	doctor := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"doctor", "--config", cfgFile}, args...), func(k string) string { return vars[k] }, &out, &errOut)
		t.Logf("stagecoach doctor %s (%v):\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
		return out.String(), err
	}

	env.Secrets.Add("hello/test")
	out, err := doctor()
	if err != nil {
		t.Errorf("doctor on a working setup: %v", err)
	}
	for _, want := range []string{"✓ App stagecoach permissions: as app.yml asks", "✓ Codertocat/Hello-World: covered by installation 1",
		"✓ tier nonprod: assumed", "✓ hello test secret:", "✓ stage test (context kubetest", "⚠ stage test", "may also list secrets", "0 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q", want)
		}
	}

	env.STS.Allow("arn:aws:iam::123456789012:role/stagecoach-nonprod", "now-with-an-external-id")
	out, err = doctor("--json")
	if exitCode(err) != 1 {
		t.Errorf("doctor with a tier it cannot assume: %v, want exit 1", err)
	}
	var report struct {
		OK     bool
		Failed int
		Checks []struct{ Name, Status, Detail, Fix string }
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("--json printed %q: %v", out, err)
	}
	if report.OK || report.Failed != 1 {
		t.Errorf("JSON report ok %v with %d failed, want false with 1", report.OK, report.Failed)
	}
	for _, c := range report.Checks {
		if c.Status == "fail" && (c.Name != "tier nonprod" || !strings.Contains(c.Detail, "AccessDenied") || c.Fix == "") {
			t.Errorf("failed check %+v, want the nonprod tier with its fix", c)
		}
	}

	if _, err := doctor("extra"); exitCode(err) != 2 {
		t.Errorf("doctor with an argument: %v, want a usage error", err)
	}
}
