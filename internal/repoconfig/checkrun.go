package repoconfig

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/ghcreate"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/markdown"
	"github.com/stagecoach/stagecoach/internal/worker"
)

// CheckName is the name of the check run that says what became of a repository's file.
const CheckName = "stagecoach/config"

// maxAnnotations is how many annotations GitHub takes with one check run request.
const maxAnnotations = 50

// checkRunJob is the job that reports check on its commit. Its key holds the verdict, so a file
// read again with the same outcome is reported once, and a changed outcome (the server's
// configuration allows more now) again.
func checkRunJob(check jobs.RepoConfigCheckRun) jobs.Job {
	verdict := "ok"
	if len(check.Problems) > 0 {
		verdict = "refused"
	}
	return jobs.Job{Kind: jobs.KindRepoConfigCheckRun,
		Key:     fmt.Sprintf("repoconfig.checkrun:%s:%s:%s:%s", strings.ToLower(check.Repo), check.SHA, check.Blob, verdict),
		Payload: mustJSON(check)}
}

// CheckRuns reports what became of repositories' files (jobs.KindRepoConfigCheckRun).
type CheckRuns struct {
	log ghcreate.Log
	gh  GitHub
	web string // GitHub's web root, for links to the file
	l   *slog.Logger
}

// NewCheckRuns builds the reporter; web is GitHub's web root (https://github.com).
func NewCheckRuns(log ghcreate.Log, gh GitHub, web string, l *slog.Logger) *CheckRuns {
	return &CheckRuns{log: log, gh: gh, web: web, l: l}
}

// Executor runs the check-run jobs.
func (c *CheckRuns) Executor() worker.Executor {
	return worker.Handle(jobs.KindRepoConfigCheckRun, c.run)
}

func (c *CheckRuns) run(ctx context.Context, j jobs.Job, p jobs.RepoConfigCheckRun) error {
	gh, err := c.gh.Installation(p.InstallationID)
	if err != nil {
		return err
	}
	owner, name, _ := strings.Cut(p.Repo, "/")
	ext := "config:" + p.Blob
	opts := CheckRunOptions(p, c.web)
	opts.ExternalID = github.Ptr(ext)
	_, created, err := ghcreate.Once(ctx, c.log, "repoconfig/"+j.Key,
		func(ctx context.Context) (int64, error) {
			return ghcreate.CheckRun(ctx, gh, owner, name, p.SHA, CheckName, ext)
		},
		func(ctx context.Context) (int64, error) {
			run, _, err := gh.Checks.CreateCheckRun(ctx, owner, name, opts)
			return run.GetID(), err
		})
	if err != nil {
		return fmt.Errorf("the configuration check run of %s at %s: %w", p.Repo, p.SHA, err)
	}
	if created {
		c.l.Info("configuration check run", "repo", p.Repo, "sha", p.SHA, "problems", len(p.Problems))
	}
	return nil
}

// CheckRunOptions is the completed check run that reports p: success when the file is in force
// (or was removed), failure with every problem (in the summary and as annotations on the
// file's lines) when it was refused.
func CheckRunOptions(p jobs.RepoConfigCheckRun, web string) github.CreateCheckRunOptions {
	opts := github.CreateCheckRunOptions{Name: CheckName, HeadSHA: p.SHA, Status: github.Ptr("completed"),
		Conclusion: github.Ptr("success"), DetailsURL: github.Ptr(web + "/" + p.Repo + "/blob/" + p.SHA + "/" + config.RepoFilePath)}
	out := &github.CheckRunOutput{}
	switch {
	case len(p.Problems) > 0:
		opts.Conclusion = github.Ptr("failure")
		out.Title = github.Ptr(fmt.Sprintf("Refused: %d problem%s in %s", len(p.Problems), plural(len(p.Problems)), config.RepoFilePath))
		for _, pr := range p.Problems {
			if a := annotation(pr); a != nil && len(out.Annotations) < maxAnnotations {
				out.Annotations = append(out.Annotations, a)
			}
		}
	case p.Blob == "":
		opts.DetailsURL = nil
		out.Title = github.Ptr(config.RepoFilePath + " removed: the server's configuration alone is in force")
	default:
		out.Title = github.Ptr(config.RepoFilePath + " is in force")
	}
	out.Summary = github.Ptr(Summary(p))
	opts.Output = out
	return opts
}

// Summary is the check run's Markdown: what is in force, or every problem and what stays in
// force meanwhile. Problems quote the file, so they are shown in a fenced block that nothing in
// them can close.
func Summary(p jobs.RepoConfigCheckRun) string {
	var b strings.Builder
	file := markdown.Code(config.RepoFilePath)
	switch {
	case len(p.Problems) > 0:
		fmt.Fprintf(&b, "Stagecoach did not take %s as of %s: a repository's file may set only what the server's configuration allows it (`allowed_overrides`), and nothing else.\n\n",
			file, markdown.Code(short(p.SHA)))
		b.WriteString(fence(p.Problems))
		if p.InForce != "" {
			fmt.Fprintf(&b, "\nNothing changed: the file of %s stays in force until a good one reaches the default branch.\n", markdown.Code(short(p.InForce)))
		} else {
			b.WriteString("\nNothing changed: the server's configuration alone stays in force until a good file reaches the default branch.\n")
		}
	case p.Blob == "":
		fmt.Fprintf(&b, "%s was removed as of %s: the apps of this repository are configured by the server's configuration alone again.\n",
			file, markdown.Code(short(p.SHA)))
	default:
		apps := make([]string, len(p.Apps))
		for i, a := range p.Apps {
			apps[i] = markdown.Code(a)
		}
		fmt.Fprintf(&b, "%s as of %s is in force for %s.\n\n", file, markdown.Code(short(p.SHA)), strings.Join(apps, ", "))
		b.WriteString("Deploys that start from now on use it; a deploy already running keeps the configuration it started with.\n")
	}
	return markdown.Limit(b.String(), 0, "")
}

// problemLine finds the line of a problem `file:line: ...`.
var problemLine = regexp.MustCompile(`^` + regexp.QuoteMeta(config.RepoFilePath) + `:(\d+): (.*)$`)

// annotation marks a problem on its line of the file, or nil when it has none.
func annotation(problem string) *github.CheckRunAnnotation {
	m := problemLine.FindStringSubmatch(problem)
	if m == nil {
		return nil
	}
	line, err := strconv.Atoi(m[1])
	if err != nil || line <= 0 {
		return nil
	}
	return &github.CheckRunAnnotation{Path: github.Ptr(config.RepoFilePath), StartLine: github.Ptr(line), EndLine: github.Ptr(line),
		AnnotationLevel: github.Ptr("failure"), Message: github.Ptr(clean(m[2]))}
}

// fence puts lines in a fenced code block whose fence is longer than any run of backticks in
// them, after dropping control and bidirectional-override characters: GitHub renders nothing
// inside, and nothing inside can end it.
func fence(lines []string) string {
	body := make([]string, len(lines))
	longest := 0
	for i, l := range lines {
		body[i] = clean(l)
		run := 0
		for _, r := range body[i] {
			if r == '`' {
				run++
				longest = max(longest, run)
			} else {
				run = 0
			}
		}
	}
	f := strings.Repeat("`", max(3, longest+1))
	return f + "\n" + strings.Join(body, "\n") + "\n" + f + "\n"
}

// clean drops control and bidirectional-override characters from one line.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case unicode.IsControl(r), r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
			return -1
		}
		return r
	}, s)
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
