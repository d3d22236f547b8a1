package chatops

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
// (newest wins) and other people's commands are refused until /unlock.
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
	for _, app := range apps {
		held, ours, err := x.st.LockStage(ctx, store.StageLock{App: app.Name, Stage: cmd.Stage, Repo: o.Repo, Owner: o.Actor, Reason: cmd.Reason, Issue: o.Issue})
		if err != nil {
			return outcome{}, err
		}
		if !ours {
			return refused("**%s** is locked already, by @%s since %s%s.", cmd.Stage, held.Owner, held.CreatedAt.UTC().Format("Jan 2 15:04 UTC"), admission.LockReason(held)), nil
		}
	}
	reply := fmt.Sprintf("🔒 locked **%s**", cmd.Stage)
	if cmd.Reason != "" {
		reply += ": " + markdown.Code(cmd.Reason)
	}
	reply += fmt.Sprintf(". Automatic deploys to %s now wait in the queue (the newest one runs after the lock), and commands for it are refused "+
		"except yours. `/unlock %s` releases it.", cmd.Stage, cmd.Stage)
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
