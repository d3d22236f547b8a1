package command

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var stages = []string{"dev", "test", "alpha", "prod"}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		want  *Command
		reply string // substring of the reply; "" when none is expected
	}{
		{"promote", "/promote prod", &Command{Verb: Promote, Stage: "prod"}, ""},
		{"promote after prose", "Looks good to me.\n/promote prod\nThanks!", &Command{Verb: Promote, Stage: "prod"}, ""},
		{"windows newlines and trailing space", "LGTM\r\n/promote alpha  \r\n", &Command{Verb: Promote, Stage: "alpha"}, ""},
		{"first command wins", "/status\n/promote prod", &Command{Verb: Status}, ""},
		{"deploy a ref", "/deploy dev feature/login", &Command{Verb: Deploy, Stage: "dev", Ref: "feature/login"}, ""},
		{"deploy the branch head", "/deploy test", &Command{Verb: Deploy, Stage: "test"}, ""},
		{"forced with a quoted reason", `/promote prod --force "hotfix for INC-42"`, &Command{Verb: Promote, Stage: "prod", Force: true, Reason: "hotfix for INC-42"}, ""},
		{"forced with a bare reason", `/deploy prod v1.2.1 --force payment outage`, &Command{Verb: Deploy, Stage: "prod", Ref: "v1.2.1", Force: true, Reason: "payment outage"}, ""},
		{"rollback", "/rollback prod", &Command{Verb: Rollback, Stage: "prod"}, ""},
		{"lock with a reason", "/lock prod  release freeze until Monday", &Command{Verb: Lock, Stage: "prod", Reason: "release freeze until Monday"}, ""},
		{"lock without a reason", "/lock alpha", &Command{Verb: Lock, Stage: "alpha"}, ""},
		{"lock for two hours", `/lock prod 2h "db migration"`, &Command{Verb: Lock, Stage: "prod", For: 2 * time.Hour, Reason: "db migration"}, ""},
		{"lock for 90 minutes, no reason", "/lock prod 90m", &Command{Verb: Lock, Stage: "prod", For: 90 * time.Minute}, ""},
		{"lock for a day", "/lock prod 1d holiday cover", &Command{Verb: Lock, Stage: "prod", For: 24 * time.Hour, Reason: "holiday cover"}, ""},
		{"lock for 1h30m", "/lock prod 1h30m 'release'", &Command{Verb: Lock, Stage: "prod", For: 90 * time.Minute, Reason: "release"}, ""},
		{"a reason starting with a digit, quoted", `/lock prod "2 migrations running"`, &Command{Verb: Lock, Stage: "prod", Reason: "2 migrations running"}, ""},
		{"lock duration without a unit", "/lock prod 30 minutes", nil, "`30` is no duration for a lock: write it like `2h`, `30m` or `1d`."},
		{"lock for too long", "/lock prod 30d", nil, "at most 14 days"},
		{"lock for too short", "/lock prod 10s", nil, "at least a minute"},
		{"lock for a negative while", "/lock prod 0h", nil, "at least a minute"},
		{"unlock", "/unlock alpha", &Command{Verb: Unlock, Stage: "alpha"}, ""},
		{"status", "/status", &Command{Verb: Status}, ""},
		{"help", "/help", &Command{Verb: Help}, ""},
		{"promote a release tag", "/promote prod v1.2.0", &Command{Verb: Promote, Stage: "prod", Ref: "v1.2.0"}, ""},
		{"deploy a short sha", "/deploy test abc1234", &Command{Verb: Deploy, Stage: "test", Ref: "abc1234"}, ""},

		{"no command", "Great work, merging now.", nil, ""},
		{"not at the start of a line", "you can type /promote prod when ready", nil, ""},
		{"quoted", "> /promote prod\nas the docs say", nil, ""},
		{"in a code block", "Run this:\n```\n/promote prod\n```", nil, ""},
		{"another bot's command", "/assign @octocat", nil, ""},
		{"verb prefix only", "/promoted prod", nil, ""},

		{"missing stage", "/promote", nil, "Which stage?"},
		{"unknown stage", "/promote production", nil, "There is no stage `production`. The stages are `dev`, `test`, `alpha`, `prod`."},
		{"too many arguments", "/promote prod now please", nil, "Too many arguments: `please`."},
		{"force without a reason", "/promote prod --force", nil, "`--force` needs a reason"},
		{"unknown option", "/deploy prod --dry-run", nil, "Unknown option in `prod --dry-run`."},
		{"a ref that climbs out of the API path", "/deploy test ../../orgs/acme", nil, "`../../orgs/acme` is not a branch, tag or sha: a ref cannot hold `..`."},
		{"status with arguments", "/status prod", nil, "`/status` takes no arguments."},
		{"forced rollback", `/rollback prod --force "x"`, nil, "`/rollback` has no `--force`."},
		{"forced lock", `/lock prod --force "x"`, nil, "`/lock` has no `--force`."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Parse(tt.body, stages)
			if !reflect.DeepEqual(got.Command, tt.want) {
				t.Errorf("command = %+v, want %+v", got.Command, tt.want)
			}
			if tt.reply == "" && got.Reply != "" || !strings.Contains(got.Reply, tt.reply) {
				t.Errorf("reply = %q, want it to contain %q", got.Reply, tt.reply)
			}
			if got.Reply != "" && !strings.Contains(got.Reply, "Usage:") && !strings.Contains(got.Reply, "There is no stage") {
				t.Errorf("a refusal without usage: %q", got.Reply)
			}
		})
	}
}

func TestEveryCommandHasItsUsage(t *testing.T) {
	for _, v := range []Verb{Promote, Deploy, Rollback, Lock, Unlock, Status, Help} {
		if u := Usage(v); !strings.HasPrefix(u, "`/"+string(v)) {
			t.Errorf("usage of %s = %q", v, u)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("/promote prod --force \"why\"")
	f.Add("text\n/deploy dev abc\n")
	f.Fuzz(func(t *testing.T, body string) {
		r := Parse(body, stages)
		if r.Command != nil && r.Reply != "" {
			t.Fatalf("both a command and a reply for %q", body)
		}
		if c := r.Command; c != nil {
			if c.Verb != Status && c.Verb != Help && !slices.Contains(stages, c.Stage) {
				t.Fatalf("command for an unknown stage %q", c.Stage)
			}
			if c.Force && c.Reason == "" {
				t.Fatalf("forced without a reason: %q", body)
			}
		}
	})
}

// TestDeployRefThatBreaksOutOfTheAPIPathIsRefused: a ref is a git ref name or a sha before it
// is ever put into an API path; anything else is refused with git's rule it breaks.
func TestDeployRefThatBreaksOutOfTheAPIPathIsRefused(t *testing.T) {
	for _, ref := range []string{"../../orgs/acme", "a..b", "x?y", "x y", "-rf", "/abs", "dir/", "a//b", "a.lock", ".hidden", "v1.", "@",
		"a@{1}", "x~1", "x^", "a:b", "a*", "a[b", `a\b`, "a\x00b", strings.Repeat("a", 256)} {
		t.Run(ref, func(t *testing.T) {
			if err := ValidRef(ref); err == nil {
				t.Errorf("ValidRef(%q) = nil, want refused", ref)
			}
			got := Parse("/deploy test "+ref, stages)
			if got.Command != nil {
				t.Fatalf("/deploy test %q parsed as %+v", ref, got.Command)
			}
			if !strings.Contains(got.Reply, "is not a branch, tag or sha") && !strings.Contains(got.Reply, "Too many arguments") {
				t.Errorf("reply = %q", got.Reply)
			}
		})
	}
	for _, ref := range []string{"master", "feature/login", "v1.2.0", "abc1234", strings.Repeat("f", 40), "release-2024#3", "user@host"} {
		if err := ValidRef(ref); err != nil {
			t.Errorf("ValidRef(%q) = %v, want valid", ref, err)
		}
	}
}

// TestCommandTextIsNeverEchoedRaw: whatever a command's words hold, the reply shows them in a
// code span, so `@org/everyone`, links and Markdown are never rendered or mentioned by the App.
func TestCommandTextIsNeverEchoedRaw(t *testing.T) {
	for _, body := range []string{
		"/promote prod @acme/everyone now",
		"/deploy prod --dry-run @acme/everyone",
		"/promote @acme/everyone",
		"/deploy test [x](https://evil.example)",
	} {
		got := Parse(body, stages)
		if got.Reply == "" {
			t.Fatalf("%q: no reply", body)
		}
		for _, raw := range []string{" @acme/everyone", "[x](https://evil.example)"} {
			if i := strings.Index(got.Reply, raw); i >= 0 && !insideCode(got.Reply, i) {
				t.Errorf("%q: the reply echoes %q outside a code span: %s", body, raw, got.Reply)
			}
		}
	}
}

// insideCode reports whether byte i of s is inside an inline code span.
func insideCode(s string, i int) bool {
	return strings.Count(s[:i], "`")%2 == 1
}
