package chatops

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/authz"
	"github.com/stagecoach/stagecoach/internal/command"
	"github.com/stagecoach/stagecoach/internal/githubapp"
)

// helpVerbs are the commands that need a right on a stage, and the right each asks for.
var helpVerbs = []command.Verb{command.Promote, command.Deploy, command.Rollback, command.Lock}

// forceUsage is the option only admins may give.
const forceUsage = ` [--force "reason"]`

// help answers /help with the commands the asking person may run in this repository, and on
// which of its stages: each decided by authz.Check, exactly as the command itself would be
// (configured users and teams, else write access; --force for admins only), with GitHub's
// answers read once for the whole reply.
func (x *Executor) help(ctx context.Context, gh *github.Client, o origin) (outcome, error) {
	dir := &memoDirectory{dir: authz.GitHubDirectory{Client: gh}, perms: map[string]string{}, teams: map[string]bool{}}
	may := map[command.Verb][]string{}
	force := false
	for _, st := range x.repoStages(o.Repo) {
		for _, v := range helpVerbs {
			if v == command.Promote && st.PromoteFrom == "" {
				continue // nothing is promoted to a stage with none before it
			}
			dec, err := authz.Check(ctx, dir, st.Who(string(v)), o.Repo, o.Actor, string(v)+" "+st.Name, false)
			if err != nil {
				return outcome{}, githubapp.Classify(err)
			}
			if !dec.Allowed {
				continue
			}
			may[v] = append(may[v], st.Name)
			if v == command.Promote || v == command.Deploy {
				forced, err := authz.Check(ctx, dir, st.Who(string(v)), o.Repo, o.Actor, string(v)+" "+st.Name, true)
				if err != nil {
					return outcome{}, githubapp.Classify(err)
				}
				force = force || forced.Allowed
			}
		}
	}
	return outcome{reply: x.helpText(o, may, force), accepted: true}, nil
}

// repoStages are the configured stages some app of repo deploys to, in the configured order.
func (x *Executor) repoStages(repo string) []*config.Stage {
	var out []*config.Stage
	for i := range x.cfg.Stages {
		st := &x.cfg.Stages[i]
		for _, app := range x.cfg.AppsForRepo(repo) {
			if _, ok := app.Stages[st.Name]; ok {
				out = append(out, st)
				break
			}
		}
	}
	return out
}

func (x *Executor) helpText(o origin, may map[command.Verb][]string, force bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "here is what you may run in %s.\n\n", o.Repo)
	b.WriteString("Write a command at the start of a line in a comment:\n\n")
	line := func(v command.Verb, where string) {
		u := command.Usage(v)
		if !force {
			u = strings.Replace(u, forceUsage, "", 1)
		}
		b.WriteString("- " + u + where + "\n")
	}
	for _, v := range helpVerbs {
		if stages := may[v]; len(stages) > 0 {
			line(v, " On "+bold(stages)+".")
		}
	}
	if stages := may[command.Lock]; len(stages) > 0 {
		line(command.Unlock, " On "+bold(stages)+"; your own locks, wherever they are.")
	}
	line(command.Status, "")
	line(command.Help, "")
	if len(may) == 0 {
		b.WriteString("\nNothing here deploys on your word: each stage names who may promote, deploy, roll back and lock it " +
			"(people with write access where it names nobody).\n")
	}
	if force {
		b.WriteString("\nAs an admin you may add `--force \"reason\"` where it is shown: it skips the stage order and soak time, lets a deploy " +
			"drop commits the stage holds that it lacks, and starts it outside the stage's deploy windows or in a freeze; the reason is " +
			"recorded with the deploy.\n")
	}
	b.WriteString(x.calendars())
	if rs := x.cfg.Release.Stage; rs != "" && contains(may[command.Promote], rs) {
		fmt.Fprintf(&b, "\n**%s** ships releases only: `/promote %s` on a release issue, or `/promote %s <tag>`.\n", rs, rs, rs)
	}
	var pushes []string
	for _, name := range may[command.Promote] {
		if st := x.cfg.Stage(name); st != nil && st.Guarded() && st.Branch != "" {
			pushes = append(pushes, "`"+st.Branch+"`")
		}
	}
	if len(pushes) > 0 {
		fmt.Fprintf(&b, "\nA push of yours to %s deploys it too, past the same checks as `/promote`.\n", strings.Join(pushes, " or "))
	}
	return b.String()
}

func bold(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "**" + n + "**"
	}
	return strings.Join(out, ", ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// memoDirectory answers each question once per /help: the reply asks about every stage, and
// GitHub's answer does not change within it.
type memoDirectory struct {
	dir   authz.Directory
	perms map[string]string
	teams map[string]bool
}

// TeamMember implements authz.Directory.
func (m *memoDirectory) TeamMember(ctx context.Context, org, team, user string) (bool, error) {
	k := org + "/" + team + "@" + user
	if ok, seen := m.teams[k]; seen {
		return ok, nil
	}
	ok, err := m.dir.TeamMember(ctx, org, team, user)
	if err == nil {
		m.teams[k] = ok
	}
	return ok, err
}

// Permission implements authz.Directory.
func (m *memoDirectory) Permission(ctx context.Context, owner, repo, user string) (string, error) {
	k := owner + "/" + repo + "@" + user
	if p, seen := m.perms[k]; seen {
		return p, nil
	}
	p, err := m.dir.Permission(ctx, owner, repo, user)
	if err == nil {
		m.perms[k] = p
	}
	return p, err
}
