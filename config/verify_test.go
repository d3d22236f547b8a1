package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const verifyBase = `credentials:
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/n"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/p"}
stages:
  - {name: test, credentials: nonprod}
  - {name: prod, credentials: prod, slots: [prod, prod-backup]}
apps:
  - name: web
    repo: acme/web
    codebuild_project: web
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web
    pr_build: {enabled: false, codebuild_project: web-pr}
    stages:
      %s:
        secret_id: web/s
        deployments: [{name: web, containers: [web], service: web}]
        verify: %s
`

// TestVerifyRules covers each rule of a stage's verify section with a file that breaks only it,
// and files close to breaking it but valid. Each problem is on the line of the verify section (17).
func TestVerifyRules(t *testing.T) {
	for _, tt := range []struct {
		name, stage, verify, want string
	}{
		{"an http check", "test", `{http: [{url: "https://test.acme.dev/healthz"}]}`, ""},
		{"a private address", "test", `{http: [{url: "http://10.0.3.7:8080/healthz"}]}`, ""},
		{"loopback", "test", `{http: [{url: "http://127.0.0.1:8080/healthz"}]}`, ""},
		{"a slot check on a slot stage", "prod", `{http: [{url: "http://web-{slot}.prod.svc/healthz"}]}`, ""},
		{"a codebuild project", "test", `{codebuild_project: web-smoke}`, ""},
		{"a slot check without slots", "test", `{http: [{url: "http://web-{slot}.test.svc/healthz"}]}`, "apps[0].stages.test.verify.http[0].url: {slot} names a slot, but this stage has no slots"},
		{"no scheme", "test", `{http: [{url: "test.acme.dev/healthz"}]}`, "apps[0].stages.test.verify.http[0].url: want an absolute http or https URL"},
		{"file scheme", "test", `{http: [{url: "file:///etc/passwd"}]}`, "apps[0].stages.test.verify.http[0].url: want an absolute http or https URL"},
		{"gopher scheme", "test", `{http: [{url: "gopher://test.acme.dev/"}]}`, `apps[0].stages.test.verify.http[0].url: scheme "gopher": Stagecoach asks http and https URLs only`},
		{"metadata service", "test", `{http: [{url: "http://169.254.169.254/latest/meta-data/iam/"}]}`, "apps[0].stages.test.verify.http[0].url: 169.254.169.254 is a link-local"},
		{"metadata service over IPv6", "test", `{http: [{url: "http://[fd00:ec2::254]/"}]}`, ""}, // a unique-local address: private, allowed
		{"a fragment", "test", `{http: [{url: "https://test.acme.dev/healthz#x"}]}`, "apps[0].stages.test.verify.http[0].url: a fragment is never sent"},
		{"the pr project", "test", `{codebuild_project: web-pr}`, ""}, // pr builds are disabled
		{"a buildspec alone", "test", `{buildspec: smoke.yaml}`, "apps[0].stages.test.verify.buildspec: a buildspec needs a codebuild_project"},
		{"bad status", "test", `{http: [{url: "https://a.dev/", status: 42}]}`, "apps[0].stages.test.verify.http[0].status: want an HTTP status code from 100 to 599, got 42"},
		{"bad body", "test", `{http: [{url: "https://a.dev/", body: "a(b"}]}`, "apps[0].stages.test.verify.http[0].body: want a regular expression"},
		{"too short a duration", "test", `{http: [{url: "https://a.dev/", duration: 5s}]}`, "apps[0].stages.test.verify.http[0].duration: 5s cannot hold 3 answers in a row 10s apart: want at least 25s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("verify.yaml", []byte(fmt.Sprintf(verifyBase, tt.stage, tt.verify)))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				if v := cfg.App("web").Stages[tt.stage].Verify; !v.Configured() {
					t.Fatalf("verify = %+v: nothing configured", v)
				}
				return
			}
			ps := problemsOf(t, err)
			if len(ps) != 1 || !strings.HasPrefix(ps[0].Field+": "+ps[0].Message, tt.want) || ps[0].Line != 17 {
				t.Fatalf("problems = %v, want one on line 17 starting %q", ps, tt.want)
			}
		})
	}
}

// TestCheckURLWithCredentialsIsRefusedWithoutRepeatingThem: a URL with a user name and password
// would send them with every check and show them on GitHub; check-config refuses it, and its
// message (printed, logged) names the URL without them.
func TestCheckURLWithCredentialsIsRefusedWithoutRepeatingThem(t *testing.T) {
	for _, u := range []string{"https://deploy:hunter2@test.acme.dev/healthz", "https://ghp_s3cr3tT0ken@test.acme.dev/healthz", "https://a:hunter2@bad host/"} {
		_, err := Parse("verify.yaml", []byte(fmt.Sprintf(verifyBase, "test", fmt.Sprintf(`{http: [{url: %q}]}`, u))))
		ps := problemsOf(t, err)
		if len(ps) != 1 || ps[0].Field != "apps[0].stages.test.verify.http[0].url" {
			t.Fatalf("%s: problems = %v, want one of the URL", u, ps)
		}
		for _, secret := range []string{"hunter2", "ghp_s3cr3tT0ken"} {
			if strings.Contains(ps.Error(), secret) {
				t.Errorf("the problem repeats the secret: %s", ps[0])
			}
		}
	}
}

// TestVerifyDefaults: a check with only a URL is named for its host and path, wants 200 three
// times in a row, every 10 s, within 2 minutes; a verify project runs buildspec-verify.yaml.
func TestVerifyDefaults(t *testing.T) {
	cfg, err := Parse("verify.yaml", []byte(fmt.Sprintf(verifyBase, "test", `{http: [{url: "https://test.acme.dev/healthz"}], codebuild_project: web-smoke}`)))
	if err != nil {
		t.Fatal(err)
	}
	v := cfg.App("web").Stages["test"].Verify
	want := HTTPCheck{Name: "test.acme.dev/healthz", URL: "https://test.acme.dev/healthz", Status: 200, Duration: 2 * time.Minute,
		Interval: 10 * time.Second, Timeout: 5 * time.Second, Successes: 3}
	if len(v.HTTP) != 1 || v.HTTP[0] != want || v.Buildspec != "buildspec-verify.yaml" {
		t.Errorf("verify = %+v, want %+v and buildspec-verify.yaml", v, want)
	}
}
