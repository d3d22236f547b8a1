package report

import (
	"fmt"
	"strings"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/markdown"
)

// verifying reports whether the deploy is verifying now.
func (v view) verifying() bool {
	return v.D.State == deploy.RollingOut && v.CP.Verify != nil && !v.CP.Verify.Passed && !v.CP.RollingBack
}

// verifyingTitle is the headline while a deploy verifies: "Verifying test: 1 of 2 checks
// passed, health 2/3 answers in a row (4 asked)".
func (v view) verifyingTitle() string {
	where := v.D.Stage
	if v.CP.Verify.Phase == deploy.VerifyIdle {
		where = fmt.Sprintf("%s's idle slot %s", v.D.Stage, v.CP.Slot)
	}
	return joinProgress("Verifying "+where, v.CP.Verify.Progress())
}

var checkIcons = map[string]string{"": "⏳", deploy.CheckPassed: "✅", deploy.CheckFailed: "❌"}

// verification is the summary's table of the verification's checks: each check's result, its
// answers and the last one. The URL and the names are the operator's; the body excerpt and
// errors are the app's and the network's, so they are shown only in code spans.
func (v view) verification(b *strings.Builder) {
	vr := v.CP.Verify
	if vr == nil {
		return
	}
	what := "Verification"
	if vr.Phase == deploy.VerifyIdle {
		what = fmt.Sprintf("Verification of the idle slot %s", v.CP.Slot)
	}
	fmt.Fprintf(b, "**%s**: %s\n\n| Check | Result | Answers | Last answer |\n|---|---|---|---|\n", what, vr.Progress())
	for _, c := range vr.Checks {
		result := c.Result
		switch c.Result {
		case "":
			result = fmt.Sprintf("running: %d of %d in a row", c.InRow, c.Successes)
		case deploy.CheckFailed:
			result += ": " + markdown.Code(c.Why)
		}
		last := "—"
		if a := c.Last; a != nil {
			switch {
			case a.Err != "":
				last = "no answer: " + markdown.Code(a.Err)
			default:
				last = fmt.Sprintf("%d", a.Status)
				if a.Excerpt != "" {
					last += " " + markdown.Code(a.Excerpt)
				}
			}
		}
		want := fmt.Sprintf("%d", c.Status)
		if c.Body != "" {
			want += ", body matching " + markdown.Code(c.Body)
		}
		fmt.Fprintf(b, "| %s %s (want %s, %d in a row) | %s %s | %d | %s |\n", markdown.Code(c.Name), markdown.Code(c.URL), want, c.Successes,
			checkIcons[c.Result], markdown.Cell(result), c.Answers, markdown.Cell(last))
	}
	if vr.BuildProject != "" {
		result, icon := "not started", "⏳"
		switch {
		case vr.BuildStatus == "SUCCEEDED":
			result, icon = "passed", "✅"
		case vr.BuildStatus != "":
			result, icon = "failed: "+markdown.Code(vr.BuildWhy), "❌"
		case vr.BuildPhase != "":
			result = "phase " + vr.BuildPhase
		}
		log := "—"
		if vr.BuildLog != "" {
			log = fmt.Sprintf("[CodeBuild log](%s)", vr.BuildLog)
		}
		fmt.Fprintf(b, "| CodeBuild %s at `%s` | %s %s | — | %s |\n", markdown.Code(vr.BuildProject), deploy.ShortSHA(v.D.SHA), icon, markdown.Cell(result), log)
	}
	b.WriteString("\n")
}
