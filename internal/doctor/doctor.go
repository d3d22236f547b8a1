// Package doctor checks a real setup against what Stagecoach needs, as `stagecoach doctor`:
//
//   - GitHub: the App's permissions and events against app.yml; every configured repository
//     covered by an installation (which has accepted those permissions); every guarded stage
//     branch (a stage with promoters or promote_from) protected so that only the App can push
//     to it, by a ruleset or classic branch protection, read through the API;
//   - AWS: each credentials tier assumable; each stage's secret describable (never read); each
//     app's CodeBuild project and ECR repository present; pull-request builds in a project of
//     their own;
//   - Kubernetes: for each stage's cluster and namespace, a SelfSubjectAccessReview of exactly
//     what Stagecoach needs (get, patch and watch its Deployments, get and patch the Services of
//     two-slot stages, get its env-key Secret), and a warning for anything broader, such as
//     listing Secrets.
//
// Every check answers ok, fail or warn, with what it found and, short of ok, the fix. The doctor
// only reads: it changes nothing it checks and never reads a secret's value.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/githubapp"
)

// Status is a check's outcome.
type Status string

// The outcomes.
const (
	OK   Status = "ok"
	Fail Status = "fail" // Stagecoach cannot work, or works less safely than the docs require
	Warn Status = "warn" // it works, but something is broader than it needs
)

// The areas checks belong to, in the order they run.
const (
	AreaGitHub     = "github"
	AreaAWS        = "aws"
	AreaKubernetes = "kubernetes"
)

// Check is one check's outcome.
type Check struct {
	Area   string `json:"area"`
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Report is every check, in the order they ran.
type Report struct {
	Checks []Check `json:"checks"`
}

// Count counts the checks with status s.
func (r Report) Count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// Failed reports whether any check failed.
func (r Report) Failed() bool { return r.Count(Fail) > 0 }

// Find returns the first check of area whose name is name.
func (r Report) Find(area, name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Area == area && c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

var marks = map[Status]string{OK: "✓", Fail: "✗", Warn: "⚠"}

var areaTitles = map[string]string{AreaGitHub: "GitHub", AreaAWS: "AWS", AreaKubernetes: "Kubernetes"}

// WriteText prints the report for people: the checks by area, each with ✓, ✗ or ⚠ and, short
// of ok, its fix; then the count of problems.
func (r Report) WriteText(w io.Writer) error {
	area := ""
	for _, c := range r.Checks {
		if c.Area != area {
			if area != "" {
				fmt.Fprintln(w)
			}
			area = c.Area
			fmt.Fprintln(w, areaTitles[area])
		}
		fmt.Fprintf(w, "  %s %s: %s\n", marks[c.Status], c.Name, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(w, "      fix: %s\n", c.Fix)
		}
	}
	fails, warns := r.Count(Fail), r.Count(Warn)
	fmt.Fprintln(w)
	_, err := fmt.Fprintf(w, "%d checks: %d ok, %d failed, %d warnings.\n", len(r.Checks), r.Count(OK), fails, warns)
	return err
}

// WriteJSON prints the report for machines: {"ok": bool, "failed": n, "warnings": n, "checks": [...]}.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	checks := r.Checks
	if checks == nil {
		checks = []Check{}
	}
	return enc.Encode(struct {
		OK       bool    `json:"ok"`
		Failed   int     `json:"failed"`
		Warnings int     `json:"warnings"`
		Checks   []Check `json:"checks"`
	}{!r.Failed(), r.Count(Fail), r.Count(Warn), checks})
}

// Options are what the doctor checks and with what.
type Options struct {
	Config   *config.Config
	Manifest []byte // app.yml
	// GitHub makes the App's clients; nil when no App is configured (its checks then fail,
	// saying so).
	GitHub *githubapp.Factory
	// AWS is the base AWS configuration Stagecoach runs with; nil when it could not be loaded
	// (AWSError says why).
	AWS      *aws.Config
	AWSError error
	// Timeout bounds each area's checks (default 60 s).
	Timeout time.Duration
}

// doctor runs the checks and collects their outcomes.
type doctor struct {
	o   Options
	cfg *config.Config
	r   Report
}

func (d *doctor) add(area, name string, s Status, detail, fix string) {
	d.r.Checks = append(d.r.Checks, Check{Area: area, Name: name, Status: s, Detail: detail, Fix: fix})
}

// Run checks the setup, area by area.
func Run(ctx context.Context, o Options) Report {
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	d := &doctor{o: o, cfg: o.Config}
	for _, area := range []func(context.Context){d.github, d.aws, d.kubernetes} {
		actx, cancel := context.WithTimeout(ctx, o.Timeout)
		area(actx)
		cancel()
	}
	return d.r
}

// usedStages are the stages some app deploys to, in the configuration's order.
func usedStages(cfg *config.Config) []*config.Stage {
	var out []*config.Stage
	for i := range cfg.Stages {
		st := &cfg.Stages[i]
		for _, app := range cfg.Apps {
			if _, ok := app.Stages[st.Name]; ok {
				out = append(out, st)
				break
			}
		}
	}
	return out
}
