package chatops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/admission"
	"github.com/stagecoach/stagecoach/internal/authz"
	"github.com/stagecoach/stagecoach/internal/command"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/markdown"
	"github.com/stagecoach/stagecoach/internal/status"
	"github.com/stagecoach/stagecoach/internal/store"
)

// lock holds a stage of every app of the repository for the commenter: automatic deploys queue
// (newest wins) and other people's commands are refused until /unlock, or until the lock
// expires when it was taken for a while (`/lock prod 2h`).
func (x *Executor) lock(ctx context.Context, gh *github.Client, o origin, cmd command.Command) (outcome, error) {
	apps := admission.AppsFor(x.cfg, o.Repo, cmd.Stage)
	if len(apps) == 0 {
		return refused("No app of %s deploys to %s.", o.Repo, markdown.Code(cmd.Stage)), nil
	}
	dec, err := authz.Check(ctx, authz.GitHubDirectory{Client: gh}, x.cfg.Stage(cmd.Stage).Who("lock"), o.Repo, o.Actor, "lock "+cmd.Stage, false)
	if err != nil {
		return outcome{}, githubapp.Classify(err)
	}
	if !dec.Allowed {
		return outcome{reply: dec.Reason}, nil
	}
	var until time.Time
	if cmd.For > 0 {
		until = x.now().Add(cmd.For)
	}
	var lock store.StageLock
	for _, app := range apps {
		held, ours, err := x.st.LockStage(ctx, store.StageLock{App: app.Name, Stage: cmd.Stage, Repo: o.Repo, Owner: o.Actor, Reason: cmd.Reason,
			Issue: o.Issue, ExpiresAt: until})
		if err != nil {
			return outcome{}, err
		}
		if !ours {
			return refused("**%s** is locked already, by @%s since %s%s%s.", cmd.Stage, held.Owner, held.CreatedAt.UTC().Format("Jan 2 15:04 UTC"),
				admission.LockUntil(held), admission.LockReason(held)), nil
		}
		lock = held
	}
	reply := fmt.Sprintf("🔒 locked **%s**", cmd.Stage)
	if !until.IsZero() {
		reply += fmt.Sprintf(" for %s,%s", lockFor(cmd.For), admission.LockUntil(lock))
	}
	if cmd.Reason != "" {
		reply += ": " + markdown.Code(cmd.Reason)
	}
	reply += fmt.Sprintf(". Automatic deploys to %s now wait in the queue (the newest one runs after the lock), and commands for it are refused "+
		"except yours. ", cmd.Stage)
	if until.IsZero() {
		reply += fmt.Sprintf("`/unlock %s` releases it; it holds until then.", cmd.Stage)
	} else {
		reply += fmt.Sprintf("The lock expires by itself then, and the queue runs; `/unlock %s` releases it sooner.", cmd.Stage)
	}
	return outcome{reply: reply, accepted: true}, nil
}

// unlock releases a stage. The lock's owner may always; others need the lock permission.
func (x *Executor) unlock(ctx context.Context, gh *github.Client, o origin, cmd command.Command) (outcome, error) {
	apps := admission.AppsFor(x.cfg, o.Repo, cmd.Stage)
	if len(apps) == 0 {
		return refused("No app of %s deploys to %s.", o.Repo, markdown.Code(cmd.Stage)), nil
	}
	var mine = true
	var held []store.StageLock
	locks, err := x.st.StageLocks(ctx)
	if err != nil {
		return outcome{}, err
	}
	for _, l := range locks {
		for _, app := range apps {
			if l.App == app.Name && l.Stage == cmd.Stage {
				held = append(held, l)
				mine = mine && strings.EqualFold(l.Owner, o.Actor)
			}
		}
	}
	if len(held) == 0 {
		return refused("**%s** is not locked.", cmd.Stage), nil
	}
	if !mine {
		dec, err := authz.Check(ctx, authz.GitHubDirectory{Client: gh}, x.cfg.Stage(cmd.Stage).Who("unlock"), o.Repo, o.Actor,
			fmt.Sprintf("unlock %s (locked by @%s)", cmd.Stage, held[0].Owner), false)
		if err != nil {
			return outcome{}, githubapp.Classify(err)
		}
		if !dec.Allowed {
			return outcome{reply: dec.Reason}, nil
		}
	}
	for _, l := range held {
		if _, err := x.st.UnlockStage(ctx, l.App, l.Stage); err != nil && !errors.Is(err, store.ErrNotFound) {
			return outcome{}, err
		}
	}
	reply := fmt.Sprintf("🔓 unlocked **%s**", cmd.Stage)
	if !mine {
		reply += fmt.Sprintf(" (it was locked by @%s%s)", held[0].Owner, admission.LockReason(held[0]))
	}
	return outcome{reply: reply + ". Queued deploys to it start now.", accepted: true}, nil
}

// status answers /status with what is where, for every app of the repository.
func (x *Executor) status(ctx context.Context, o origin) (outcome, error) {
	apps, err := status.Read(ctx, x.st, x.cfg, o.Repo)
	if err != nil {
		return outcome{}, err
	}
	if len(apps) == 0 {
		return refused("No app is configured for %s.", o.Repo), nil
	}
	return outcome{reply: "here is what is where:\n\n" + status.Markdown(apps, x.webURL, x.now()), accepted: true}, nil
}

// lockFor says how long a lock was taken for: "2h", "90m", "1d".
func lockFor(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// calendars says, for /help, when each stage takes deploys and how long commits soak on it.
func (x *Executor) calendars() string {
	var lines []string
	for i := range x.cfg.Stages {
		st := &x.cfg.Stages[i]
		cal, err := st.Calendar()
		if err == nil && cal != nil {
			line := fmt.Sprintf("- **%s** takes deploys", st.Name)
			if w := cal.Describe(); w != "" {
				line += " only " + w
			} else {
				line += " any time"
			}
			for _, f := range cal.Freezes {
				if f.Until.After(x.now()) {
					line += fmt.Sprintf("; frozen from %s to %s: %s", cal.Format(f.From), cal.Format(f.Until), markdown.Code(f.Reason))
				}
			}
			lines = append(lines, line+". Outside that a deploy waits, queued, and starts when the stage opens; `/rollback` does not wait.")
		}
		if st.MinSoak > 0 {
			for _, next := range x.cfg.NextStages(st.Name) {
				lines = append(lines, fmt.Sprintf("- **%s** takes a commit only once it has run %s on **%s** (`min_soak`).", next.Name, lockFor(st.MinSoak), st.Name))
			}
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return "\nWhen stages take deploys:\n\n" + strings.Join(lines, "\n") + "\n"
}
