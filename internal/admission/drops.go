package admission

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/markdown"
)

// Head is something a stage holds: its branch's head on GitHub, what runs there, or what its
// branch held before a push.
type Head struct {
	What string // e.g. "prod's branch", "what runs on prod"
	SHA  string
}

// Commit is one commit a move would drop.
type Commit struct {
	SHA, Title string
	Author     string // Markdown: "@login", or an escaped git author's name GitHub knows no account for
}

// Drops is what moving a stage to Target takes off it: the commits its heads have that Target
// lacks (GitHub's compare API, Target...head), and heads that share no history with Target.
type Drops struct {
	Stage, Target string
	RepoURL       string
	Heads         []Head   // the heads that hold dropped commits
	Commits       []Commit // the dropped commits, newest last, at most maxListed
	Total         int      // how many there are in all
	Unrelated     []Head   // heads that share no history with Target: all of them would go
}

// maxListed bounds the commits a refusal or a release issue lists; the compare link has them all.
const maxListed = 20

// Empty reports whether nothing would be dropped.
func (d Drops) Empty() bool { return d.Total == 0 && len(d.Unrelated) == 0 }

// Dropped compares target with each head on GitHub and gathers what moving the stage to target
// would drop. Heads equal to target, empty, or the same as one before are skipped.
func Dropped(ctx context.Context, gh *github.Client, repo, webURL, stage, target string, heads []Head) (Drops, error) {
	owner, name, _ := strings.Cut(repo, "/")
	d := Drops{Stage: stage, Target: target, RepoURL: strings.TrimSuffix(webURL, "/") + "/" + repo}
	seenHead, seen := map[string]bool{target: true, "": true, zeroSHA: true}, map[string]bool{}
	for _, h := range heads {
		if seenHead[h.SHA] {
			continue
		}
		seenHead[h.SHA] = true
		cmp, _, err := gh.Repositories.CompareCommits(ctx, owner, name, target, h.SHA, &github.ListOptions{PerPage: 250})
		if isNotFound(err) {
			d.Unrelated = append(d.Unrelated, h) // no common history, or a commit GitHub no longer has
			continue
		}
		if err != nil {
			return Drops{}, githubapp.Classify(fmt.Errorf("comparing %s with %s: %w", deploy.ShortSHA(target), deploy.ShortSHA(h.SHA), err))
		}
		if cmp.GetAheadBy() == 0 {
			continue
		}
		d.Heads = append(d.Heads, h)
		added := 0
		for _, rc := range cmp.Commits {
			if seen[rc.GetSHA()] {
				continue
			}
			seen[rc.GetSHA()] = true
			added++
			if len(d.Commits) < maxListed {
				title, _, _ := strings.Cut(rc.GetCommit().GetMessage(), "\n")
				author := markdown.Text(rc.GetCommit().GetAuthor().GetName()) // anyone's words
				if login := rc.GetAuthor().GetLogin(); login != "" {
					author = "@" + login // GitHub's account: mentioned on purpose
				}
				d.Commits = append(d.Commits, Commit{SHA: rc.GetSHA(), Title: title, Author: author})
			}
		}
		// Commits past the 250 the API lists are counted, never shown.
		d.Total += added + max(cmp.GetAheadBy()-len(cmp.Commits), 0)
	}
	return d, nil
}

const zeroSHA = "0000000000000000000000000000000000000000"

// List renders the dropped commits as a Markdown list, titles escaped.
func (d Drops) List() string {
	var b strings.Builder
	for _, c := range d.Commits {
		fmt.Fprintf(&b, "- [`%s`](%s/commit/%s) %s", deploy.ShortSHA(c.SHA), d.RepoURL, c.SHA, markdown.Text(c.Title))
		if c.Author != "" {
			fmt.Fprintf(&b, " (%s)", c.Author)
		}
		b.WriteString("\n")
	}
	if more := d.Total - len(d.Commits); more > 0 {
		for _, h := range d.Heads {
			fmt.Fprintf(&b, "- … and more: [all that %s holds and `%s` lacks](%s/compare/%s...%s)\n", h.What, deploy.ShortSHA(d.Target),
				d.RepoURL, d.Target, h.SHA)
		}
	}
	for _, h := range d.Unrelated {
		fmt.Fprintf(&b, "- all of %s (`%s`), which shares no history with `%s`\n", h.What, deploy.ShortSHA(h.SHA), deploy.ShortSHA(d.Target))
	}
	return b.String()
}

// Summary says in one sentence what is dropped and from where.
func (d Drops) Summary() string {
	var where []string
	for _, h := range append(append([]Head(nil), d.Heads...), d.Unrelated...) {
		where = append(where, fmt.Sprintf("%s (`%s`)", h.What, deploy.ShortSHA(h.SHA)))
	}
	n := fmt.Sprintf("%d commit(s)", d.Total)
	if d.Total == 0 {
		n = "commits"
	}
	return fmt.Sprintf("%s that %s holds and `%s` lacks", n, strings.Join(where, " and "), deploy.ShortSHA(d.Target))
}

// Refusal is the gate's answer to a move that would drop commits without --force.
func (d Drops) Refusal(r Request, t Target) string {
	var head, force string
	switch {
	case t.Branch != "":
		head = fmt.Sprintf("Moving **%s** to `%s` would drop %s:", d.Stage, deploy.ShortSHA(t.SHA), d.Summary())
		force = markdown.Code(fmt.Sprintf("/promote %s --force \"the reason\"", d.Stage))
		if t.Tag != "" {
			force = markdown.Code(fmt.Sprintf("/promote %s %s --force \"the reason\"", d.Stage, t.Tag))
		}
	default:
		head = fmt.Sprintf("Deploying `%s` to **%s** would take off it %s:", deploy.ShortSHA(t.SHA), d.Stage, d.Summary())
		force = fmt.Sprintf("`/deploy %s %s --force \"the reason\"`", d.Stage, deploy.ShortSHA(t.SHA))
	}
	return fmt.Sprintf("%s\n\n%s\nNothing was moved or deployed: Stagecoach drops nothing from a stage silently. Merge them into what you "+
		"ship first (a hotfix into the release, then tag it again), or an admin may drop them on purpose: %s.", head, d.List(), force)
}

// Forced says what a forced move dropped, for the reply that accepts it.
func (d Drops) Forced(actor, reason string) string {
	return fmt.Sprintf("**Dropping** %s from **%s**, as @%s forced (%s):\n\n%s", d.Summary(), d.Stage, actor, markdown.Code(reason), d.List())
}

// drops is rule 5. A rollback (an image, a slot switch, or an old commit built again when its
// image is unknown) takes commits off on purpose, and a
// stage that is not guarded takes whatever its people deploy; otherwise what the stage holds is
// compared with the new commit: the branch's real head on GitHub when the deploy moves the
// branch, what the branch held before a push, and what runs on the stage.
// It also returns the branch head it compared with, and whether it read one.
func (g *Gate) drops(ctx context.Context, gh *github.Client, r Request, t Target) (Drops, string, bool, error) {
	if !r.Stage.Guarded() || r.Verb == "rollback" || t.Mode == deploy.ModeImage || t.Mode == deploy.ModeSwitch {
		return Drops{}, "", false, nil
	}
	var heads []Head
	var branchHead string
	if t.Branch != "" {
		var err error
		if branchHead, err = BranchHead(ctx, gh, r.Repo, t.Branch); err != nil {
			return Drops{}, "", false, err
		}
		if branchHead != "" {
			heads = append(heads, Head{What: fmt.Sprintf("`%s`'s branch", t.Branch), SHA: branchHead})
		}
	}
	if t.Before != "" {
		heads = append(heads, Head{What: fmt.Sprintf("`%s` before the push", r.Stage.Branch), SHA: t.Before})
	}
	for _, app := range r.Apps {
		live, err := g.st.LiveDeploys(ctx, app.Name)
		if err != nil {
			return Drops{}, "", false, err
		}
		if d, ok := live[r.Stage.Name]; ok {
			heads = append(heads, Head{What: "what runs on " + r.Stage.Name, SHA: d.SHA})
		}
	}
	d, err := Dropped(ctx, gh, r.Repo, g.webURL, r.Stage.Name, t.SHA, heads)
	return d, branchHead, t.Branch != "", err
}

// BranchHead is where branch points in repo on GitHub; "" when it does not exist.
func BranchHead(ctx context.Context, gh *github.Client, repo, branch string) (string, error) {
	owner, name, _ := strings.Cut(repo, "/")
	ref, _, err := gh.Git.GetRef(ctx, owner, name, "heads/"+branch)
	switch {
	case isNotFound(err):
		return "", nil
	case err != nil:
		return "", githubapp.Classify(fmt.Errorf("reading %s: %w", branch, err))
	}
	return ref.GetObject().GetSHA(), nil
}

// PeelTag resolves a tag to its commit on GitHub: a lightweight tag's ref names the commit, an
// annotated tag's names a tag object that names the commit (or, rarely, another tag).
func PeelTag(ctx context.Context, gh *github.Client, owner, repo, tag string) (string, error) {
	ref, _, err := gh.Git.GetRef(ctx, owner, repo, "tags/"+tag)
	if err != nil {
		return "", err
	}
	obj := ref.GetObject()
	for range 4 {
		if obj.GetType() != "tag" {
			return obj.GetSHA(), nil
		}
		t, _, err := gh.Git.GetTag(ctx, owner, repo, obj.GetSHA())
		if err != nil {
			return "", err
		}
		obj = t.GetObject()
	}
	return "", fmt.Errorf("tag %s nests tags too deeply", tag)
}
