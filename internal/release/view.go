package release

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/admission"
	"github.com/stagecoach/stagecoach/internal/authz"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/markdown"
	"github.com/stagecoach/stagecoach/internal/status"
	"github.com/stagecoach/stagecoach/internal/store"
)

// View is everything the release issue, its check run and its comments show, resolved, so
// rendering is a pure function that golden files pin down.
type View struct {
	Release   store.Release
	From, To  string // the stage releases come from (alpha) and go to (prod)
	Branch    string // To's branch, which a promotion moves
	Promoters config.Approvers
	Apps      []AppView
	Changes   Changes
	Status    []status.App
	Refusal   string // why the tag cannot be promoted; "" when it can
	// BranchHead is where To's branch points on GitHub ("" when it does not exist), and Dropped
	// what promoting would take off To: commits its branch or what runs there hold that the
	// release lacks (a hotfix pushed to prod, say). A promotion refuses to drop them without
	// an admin's --force.
	BranchHead string
	Dropped    admission.Drops
	Moved      *Move // the tag moved to this release's commit since its issue opened; nil when not
	// MinSoak is how long a commit must run on From before it goes to To (From's min_soak), and
	// Unsoaked, when set, says the release's commit has not run that long yet: when it will
	// have, or that it left From before it did.
	MinSoak  time.Duration
	Unsoaked *admission.Readiness
	WebURL   string
	Now      time.Time
}

// Move is a release tag moved from one commit to another.
type Move struct {
	From, To string
	At       time.Time
}

// AppView is one app's side of a release.
type AppView struct {
	Name       string
	FromDeploy *deploy.Deploy // the tagged commit's successful deploy to From
	FromLive   *deploy.Deploy // what runs on From now
	ToLive     *deploy.Deploy // what runs on To now
}

// Changes is what promoting would ship: the commits between what runs on To (or, when nothing
// Stagecoach deployed runs there, To's branch on GitHub) and the tag, and the pull requests they
// merged.
type Changes struct {
	Base    string // the sha running on To, else its branch's head; "" when neither exists
	Total   int
	Commits []Commit
	Pulls   []Pull
}

// Commit is one commit of the changelog.
type Commit struct {
	SHA, Title, Author string
}

// Pull is one merged pull request of the changelog, as its merge or squash commit names it.
// Authors are "@login", or a git author's name when GitHub knows no account for them.
type Pull struct {
	Number        int
	Title, Author string
}

// mergeTitle and squashTitle find the pull request a commit merged: GitHub's merge commits say
// "Merge pull request #12 from owner/branch" (the title follows on the next line); squash merges
// end their title with "(#12)".
var (
	mergeTitle  = regexp.MustCompile(`^Merge pull request #(\d+) from \S+`)
	squashTitle = regexp.MustCompile(`^(.*) \(#(\d+)\)$`)
)

// changelog reads the compare API's answer.
func changelog(cmp *github.CommitsComparison) Changes {
	c := Changes{Total: cmp.GetTotalCommits()}
	for _, rc := range cmp.Commits {
		msg := rc.GetCommit().GetMessage()
		title, rest, _ := strings.Cut(msg, "\n")
		// A GitHub login is mentioned; a bare git author name is words anyone could have
		// written, so it is escaped.
		author := markdown.Text(rc.GetCommit().GetAuthor().GetName())
		if login := rc.GetAuthor().GetLogin(); login != "" {
			author = "@" + login
		}
		c.Commits = append(c.Commits, Commit{SHA: rc.GetSHA(), Title: title, Author: author})
		if m := mergeTitle.FindStringSubmatch(title); m != nil {
			var n int
			fmt.Sscan(m[1], &n)
			prTitle := strings.TrimSpace(rest)
			prTitle, _, _ = strings.Cut(prTitle, "\n")
			if prTitle == "" {
				prTitle = strings.TrimPrefix(title, m[0])
			}
			c.Pulls = append(c.Pulls, Pull{Number: n, Title: prTitle, Author: author})
		} else if m := squashTitle.FindStringSubmatch(title); m != nil {
			var n int
			fmt.Sscan(m[2], &n)
			c.Pulls = append(c.Pulls, Pull{Number: n, Title: m[1], Author: author})
		}
	}
	return c
}

func (v View) repoURL() string  { return v.WebURL + "/" + v.Release.Repo }
func (v View) issueURL() string { return fmt.Sprintf("%s/issues/%d", v.repoURL(), v.Release.Issue) }

func (v View) commitLink(sha string) string {
	return fmt.Sprintf("[`%s`](%s/commit/%s)", deploy.ShortSHA(sha), v.repoURL(), sha)
}

// Marker finds a release issue's body.
func (v View) marker() string { return fmt.Sprintf("<!-- stagecoach:release %s -->", v.Release.Tag) }

// tag is the release's tag as Markdown shows it: a tag's name is whatever its pusher chose.
func (v View) tag() string { return markdown.Code(v.Release.Tag) }

func (v View) readyTitle() string {
	return fmt.Sprintf("%s is ready for %s", v.Release.Tag, v.To)
}

func (v View) refusedTitle() string {
	return markdown.Clip(fmt.Sprintf("%s cannot be promoted to %s", v.Release.Tag, v.To), 120)
}

// who names the promoters for a product owner.
func (v View) who() string {
	if v.Promoters.Empty() {
		return "someone with write access to " + v.Release.Repo
	}
	return authz.Who(v.Promoters)
}

// IssueBody is the release issue's description, within GitHub's size limit.
func (v View) IssueBody() string {
	r := v.Release
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n## Release %s\n\n", v.marker(), v.tag())
	b.WriteString(v.movedNote())
	fmt.Fprintf(&b, "**%s** is commit %s", v.tag(), v.commitLink(r.SHA))
	if r.TaggedBy != "" {
		fmt.Fprintf(&b, ", tagged by @%s", r.TaggedBy)
	}
	fmt.Fprintf(&b, ". It ran on **%s**:\n\n", v.From)
	for _, a := range v.Apps {
		d := a.FromDeploy
		fmt.Fprintf(&b, "- ✅ %s: deploy #%d succeeded %s, in %s", a.Name, d.ID, status.Ago(d.FinishedAt, v.Now), took(*d))
		if d.Trigger.Actor != "" {
			fmt.Fprintf(&b, ", by @%s", d.Trigger.Actor)
		}
		b.WriteString(sameImage(*d, v.From))
		b.WriteString("\n")
	}
	b.WriteString("\n")
	b.WriteString(v.changesSection())
	b.WriteString(v.droppedSection())
	moves := fmt.Sprintf("deploys %s to %s", deploy.ShortSHA(r.SHA), v.To)
	if v.Branch != "" {
		moves = fmt.Sprintf("moves `%s` to %s and deploys it", v.Branch, deploy.ShortSHA(r.SHA))
	}
	fmt.Fprintf(&b, "### How to promote\n\n%s%s may accept this release: comment `/promote %s` here, or press **Promote to %s** on the "+
		"`%s` check run of %s. Stagecoach then %s; progress appears in a comment here, and this issue "+
		"closes when %s runs %s. If the deploy fails, %s keeps running what it runs now and this issue stays open.\n\n",
		v.soakNote(), markdown.Capitalize(v.who()), v.To, v.To, CheckName, v.commitLink(r.SHA), moves, v.To, v.tag(), v.To)
	fmt.Fprintf(&b, "### What is where\n\n%s\n_As of %s. `/status` in a comment shows it now._\n", status.Markdown(v.Status, v.WebURL, v.Now),
		v.Now.UTC().Format("Jan 2 15:04 UTC"))
	return markdown.Limit(b.String(), 0, v.compareURL())
}

// compareURL is where GitHub shows every commit the release would ship.
func (v View) compareURL() string {
	if v.Changes.Base == "" {
		return v.repoURL() + "/commit/" + v.Release.SHA
	}
	return fmt.Sprintf("%s/compare/%s...%s", v.repoURL(), v.Changes.Base, v.Release.SHA)
}

// movedNote says at the top of the issue that its tag moved, so nobody promotes what they read
// about before.
func (v View) movedNote() string {
	m := v.Moved
	if m == nil {
		return ""
	}
	return fmt.Sprintf("> [!WARNING]\n> **The tag moved.** %s named %s until %s; it names %s now, and this issue describes %s: its "+
		"changelog and what promoting would drop are new. A promotion started for `%s` is refused.\n\n",
		v.tag(), v.commitLink(m.From), m.At.UTC().Format("Jan 2 15:04 UTC"), v.commitLink(m.To), v.commitLink(m.To), deploy.ShortSHA(m.From))
}

// MovedComment tells the people following the release issue that its tag moved.
func (v View) MovedComment() string {
	m := v.Moved
	what := "The description above is rewritten for the new commit; read it again before promoting."
	if v.Refusal != "" {
		what = fmt.Sprintf("%s cannot be promoted: %s.", v.commitLink(m.To), v.Refusal)
	}
	return fmt.Sprintf("⚠️ **The tag %s moved** from %s to %s. %s A promotion started for `%s` is refused.\n",
		v.tag(), v.commitLink(m.From), v.commitLink(m.To), what, deploy.ShortSHA(m.From))
}

// RefusedIssueBody is the issue of a release whose tag moved onto a commit that cannot be
// promoted: it says so, and offers nothing.
func (v View) RefusedIssueBody() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n## Release %s\n\n", v.marker(), v.tag())
	b.WriteString(v.movedNote())
	fmt.Fprintf(&b, "**%s** is commit %s, and it cannot be promoted to **%s**: %s.\n\n", v.tag(), v.commitLink(v.Release.SHA), v.To, v.Refusal)
	fmt.Fprintf(&b, "To release it, get it onto **%s** first, then tag it again (or move the tag back).\n", v.From)
	return markdown.Limit(b.String(), 0, v.repoURL()+"/commit/"+v.Release.SHA)
}

// changesSection lists what promoting would ship.
func (v View) changesSection() string {
	c := v.Changes
	var b strings.Builder
	b.WriteString("### What ships\n\n")
	if c.Base == "" {
		fmt.Fprintf(&b, "Nothing runs on **%s** yet, and `%s` has no branch: this is its first release.\n\n", v.To, v.Branch)
		return b.String()
	}
	where := fmt.Sprintf("%s, which runs %s now", v.To, v.commitLink(c.Base))
	if live := v.toLive(); live == "" {
		where = fmt.Sprintf("`%s`'s branch at %s (nothing Stagecoach deployed runs on %s yet)", v.Branch, v.commitLink(c.Base), v.To)
	}
	fmt.Fprintf(&b, "%d commit(s) since %s ([compare](%s/compare/%s...%s)).\n\n", c.Total, where, v.repoURL(), c.Base, v.Release.SHA)
	if len(c.Pulls) > 0 {
		b.WriteString("Pull requests:\n\n")
		for _, p := range c.Pulls {
			fmt.Fprintf(&b, "- #%d %s", p.Number, markdown.Text(p.Title))
			if p.Author != "" {
				fmt.Fprintf(&b, " (%s)", p.Author)
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	if len(c.Commits) > 0 {
		fmt.Fprintf(&b, "<details><summary>%d commit(s)</summary>\n\n", len(c.Commits))
		for _, cm := range c.Commits {
			fmt.Fprintf(&b, "- %s %s", v.commitLink(cm.SHA), markdown.Text(cm.Title))
			if cm.Author != "" {
				fmt.Fprintf(&b, " (%s)", cm.Author)
			}
			b.WriteString("\n")
		}
		if c.Total > len(c.Commits) {
			fmt.Fprintf(&b, "- … and %d more: see the compare link\n", c.Total-len(c.Commits))
		}
		b.WriteString("\n</details>\n\n")
	}
	return b.String()
}

// toLive is the sha running on To, "" when nothing does.
func (v View) toLive() string {
	if len(v.Apps) > 0 && v.Apps[0].ToLive != nil {
		return v.Apps[0].ToLive.SHA
	}
	return ""
}

// droppedSection lists what promoting would take off To, and what to do about it.
func (v View) droppedSection() string {
	d := v.Dropped
	if d.Empty() {
		return ""
	}
	return fmt.Sprintf("### ⚠️ What promoting would drop\n\nPromoting would drop %s from **%s**:\n\n%s\n`/promote %s` refuses to drop "+
		"them: merge them into the release and tag it again, or an admin may drop them on purpose with %s.\n\n", d.Summary(), v.To, d.List(), v.To,
		markdown.Code(fmt.Sprintf("/promote %s --force \"the reason\"", v.To)))
}

// ReadySummary is the release check run's body.
func (v View) ReadySummary() string {
	s := fmt.Sprintf("**%s** (%s) succeeded on **%s** and can go to **%s**. %s may press **Promote to %s** above, or comment "+
		"`/promote %s` on [the release issue](%s).\n", v.tag(), v.commitLink(v.Release.SHA), v.From, v.To, markdown.Capitalize(v.who()), v.To, v.To, v.issueURL())
	if !v.Dropped.Empty() {
		s += fmt.Sprintf("\n⚠️ Promoting it would drop %s; the release issue lists them.\n", v.Dropped.Summary())
	}
	return markdown.Limit(s, 0, v.issueURL())
}

// RefusedSummary is the check run's body for a tag that cannot be promoted.
func (v View) RefusedSummary() string {
	return markdown.Limit(fmt.Sprintf("%s, and **%s** takes only commits that did (the stage order). No release issue was opened.\n\n"+
		"To release this commit, get it onto **%s** first (`/promote %s` once it runs on the stage before), then tag it again. "+
		"An admin may override the order with `/deploy %s %s --force \"the reason\"`.\n",
		markdown.Capitalize(v.Refusal), v.To, v.From, v.From, v.To, deploy.ShortSHA(v.Release.SHA)), 0, v.repoURL()+"/commit/"+v.Release.SHA)
}

// took is how long a deploy ran.
func took(d deploy.Deploy) time.Duration {
	start := d.StartedAt
	if start.IsZero() {
		start = d.CreatedAt
	}
	return d.FinishedAt.Sub(start).Round(time.Second)
}
