package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

// finish claims the app's due deploy and ends it in state.
func finish(t *testing.T, s *Store, want int64, state deploy.State) {
	t.Helper()
	ctx := context.Background()
	d, l, err := s.ClaimDeploy(ctx, "w", time.Minute)
	if err != nil {
		t.Fatalf("claiming deploy %d: %v", want, err)
	}
	if d.ID != want {
		t.Fatalf("claimed deploy %d, want %d", d.ID, want)
	}
	if err := s.Advance(ctx, l, Update{State: deploy.Preflight, Release: true}); err != nil {
		t.Fatal(err)
	}
	d, l, err = s.ClaimDeploy(ctx, "w", time.Minute)
	if err != nil || d.ID != want {
		t.Fatalf("claiming deploy %d again: %v (got %d)", want, err, d.ID)
	}
	if err := s.Advance(ctx, l, Update{State: state}); err != nil {
		t.Fatal(err)
	}
}

func push(app, stage, sha, delivery string) deploy.Request {
	return deploy.Request{App: app, Stage: stage, Repo: "acme/" + app, SHA: sha, Ref: stage, InstallationID: 7,
		Trigger: deploy.Trigger{Event: "push", Delivery: delivery, Actor: "lead"}}
}

// TestSameCommitAgain covers when a request for a commit that has a deploy is that deploy: a
// merged pull request's late companion always is, a command's retry is, and a push is while
// nothing else was deployed to the stage since; a push of a commit that ran long ago (prod moved
// back by hand) is a new deploy.
func TestSameCommitAgain(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		useClock(s)
		a := record(t, s, intake("p1", push("web", "prod", "aaa", "p1"))).Deploys[0]
		if again := record(t, s, intake("p2", push("web", "prod", "aaa", "p2"))).Deploys[0]; again.New || again.ID != a.ID {
			t.Fatalf("a second push of a queued commit = %+v, want deploy %d", again, a.ID)
		}
		finish(t, s, a.ID, deploy.Succeeded)
		if again := record(t, s, intake("p3", push("web", "prod", "aaa", "p3"))).Deploys[0]; again.New {
			t.Fatalf("a push of the live commit made a new deploy %d", again.ID)
		}
		b := record(t, s, intake("p4", push("web", "prod", "bbb", "p4"))).Deploys[0]
		finish(t, s, b.ID, deploy.Succeeded)
		back := record(t, s, intake("p5", push("web", "prod", "aaa", "p5"))).Deploys[0]
		if !back.New || back.ID == a.ID {
			t.Fatalf("prod moved back to aaa by hand = %+v, want a new deploy", back)
		}
		// The merged PR's event for bbb comes late, after aaa was pushed again: it is bbb's
		// companion, never a deploy of its own.
		late := push("web", "prod", "bbb", "pr-late")
		late.Trigger.Event, late.Trigger.PR = "pull_request", 9
		if got := record(t, s, intake("pr-late", late)).Deploys[0]; got.New || got.ID != b.ID {
			t.Fatalf("a late pull_request companion = %+v, want deploy %d", got, b.ID)
		}
		// A command's request has its own key, and a retry of it finds it.
		cmd := push("web", "prod", "aaa", "c1")
		cmd.Trigger.Event, cmd.Nonce = "issue_comment", "comment:acme/web:1"
		first, err := s.RequestDeploys(context.Background(), []deploy.Request{cmd})
		if err != nil || !first[0].New {
			t.Fatalf("a command's deploy = %+v, %v; want new", first, err)
		}
		retried, err := s.RequestDeploys(context.Background(), []deploy.Request{cmd})
		if err != nil || retried[0].New || retried[0].ID != first[0].ID {
			t.Fatalf("the command retried = %+v, %v; want deploy %d", retried, err, first[0].ID)
		}
	})
}

// TestHeldAndCancelled: a held deploy is not claimed until released; a cancelled one never is,
// and its check run is told.
func TestHeldAndCancelled(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		useClock(s)
		r := push("web", "prod", "aaa", "c1")
		r.Held = true
		rd, err := s.RequestDeploys(ctx, []deploy.Request{r})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.ClaimDeploy(ctx, "w", time.Minute); !errors.Is(err, ErrNoWork) {
			t.Fatalf("claimed a held deploy: %v", err)
		}
		// The push the promotion causes finds the held deploy.
		if got := record(t, s, intake("p1", push("web", "prod", "aaa", "p1"))).Deploys[0]; got.New || got.ID != rd[0].ID {
			t.Fatalf("the promotion's push = %+v, want the held deploy %d", got, rd[0].ID)
		}
		if err := s.ReleaseDeploy(ctx, rd[0].ID); err != nil {
			t.Fatal(err)
		}
		if d, _, err := s.ClaimDeploy(ctx, "w", time.Minute); err != nil || d.ID != rd[0].ID || d.Held {
			t.Fatalf("after release: claimed %+v, %v", d, err)
		}

		r2 := push("web", "alpha", "bbb", "c2")
		r2.Held = true
		rd2, _ := s.RequestDeploys(ctx, []deploy.Request{r2})
		if ok, err := s.CancelDeploy(ctx, rd2[0].ID, "GitHub would not move alpha"); err != nil || !ok {
			t.Fatalf("cancel = %v, %v", ok, err)
		}
		d, _ := s.Deploy(ctx, rd2[0].ID)
		if d.State != deploy.Cancelled || d.Error != "GitHub would not move alpha" || d.FinishedAt.IsZero() {
			t.Errorf("cancelled deploy = %+v", d)
		}
		if ok, _ := s.CancelDeploy(ctx, rd2[0].ID, "again"); ok {
			t.Error("cancelled a deploy twice")
		}
		pending, _ := s.PendingJobs(ctx)
		if pending["deploy.report"] != 1 || pending["deploy.ended"] != 1 {
			t.Errorf("pending jobs = %v, want the cancelled deploy's report and end", pending)
		}
	})
}

// TestLocks: a lock holds queued deploys of its stage, except those a command by its owner asked
// for; another person cannot take it; unlocking lets the queue run.
func TestLocks(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		useClock(s)
		l, ours, err := s.LockStage(ctx, StageLock{App: "web", Stage: "prod", Repo: "acme/web", Owner: "sre", Reason: "db migration", Issue: 3})
		if err != nil || !ours || l.Owner != "sre" {
			t.Fatalf("lock = %+v, %v, %v", l, ours, err)
		}
		if l, ours, _ := s.LockStage(ctx, StageLock{App: "web", Stage: "prod", Repo: "acme/web", Owner: "dev", Reason: "mine"}); ours || l.Owner != "sre" || l.Reason != "db migration" {
			t.Fatalf("someone else's lock = %+v, %v: want sre's kept", l, ours)
		}
		if l, ours, _ := s.LockStage(ctx, StageLock{App: "web", Stage: "prod", Repo: "acme/web", Owner: "sre", Reason: "longer migration"}); !ours || l.Reason != "longer migration" {
			t.Fatalf("the owner locking again = %+v, %v", l, ours)
		}
		auto := record(t, s, intake("p1", push("web", "prod", "aaa", "p1"))).Deploys[0]
		other := record(t, s, intake("p2", push("web", "test", "aaa", "p2"))).Deploys[0]
		if d, _, err := s.ClaimDeploy(ctx, "w", time.Minute); err != nil || d.ID != other.ID {
			t.Fatalf("claimed %d (%v), want only the unlocked stage's %d", d.ID, err, other.ID)
		}
		if _, _, err := s.ClaimDeploy(ctx, "w", time.Minute); !errors.Is(err, ErrNoWork) {
			t.Fatalf("claimed a deploy of the locked stage: %v", err)
		}
		// The owner's own command passes the lock; it supersedes the queued automatic deploy.
		cmd := push("web", "prod", "bbb", "c1")
		cmd.Trigger.Event, cmd.Trigger.Actor, cmd.Nonce = "issue_comment", "sre", "c1"
		rd, _ := s.RequestDeploys(ctx, []deploy.Request{cmd})
		if d, _, err := s.ClaimDeploy(ctx, "w2", time.Minute); err != nil || d.ID != rd[0].ID {
			t.Fatalf("claimed %d (%v), want the lock owner's deploy %d", d.ID, err, rd[0].ID)
		}
		if d, _ := s.Deploy(ctx, auto.ID); d.State != deploy.Superseded {
			t.Errorf("the automatic deploy is %s, want superseded by the owner's", d.State)
		}
		locks, _ := s.StageLocks(ctx)
		if len(locks) != 1 || locks[0].Reason != "longer migration" || locks[0].Owner != "sre" {
			t.Errorf("locks = %+v", locks)
		}
		if _, err := s.UnlockStage(ctx, "web", "prod"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UnlockStage(ctx, "web", "prod"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unlocking twice: %v, want ErrNotFound", err)
		}
	})
}

// TestLiveAndSucceeded: what runs on a stage is its newest successful deploy.
func TestLiveAndSucceeded(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		useClock(s)
		a := record(t, s, intake("p1", push("web", "test", "aaa", "p1"))).Deploys[0]
		finish(t, s, a.ID, deploy.Succeeded)
		b := record(t, s, intake("p2", push("web", "test", "bbb", "p2"))).Deploys[0]
		finish(t, s, b.ID, deploy.Failed)
		live, err := s.LiveDeploys(ctx, "web")
		if err != nil || live["test"].SHA != "aaa" || len(live) != 1 {
			t.Fatalf("live = %+v, %v; want aaa on test", live, err)
		}
		if _, ok, _ := s.Succeeded(ctx, "web", "test", "bbb"); ok {
			t.Error("a failed commit counts as succeeded")
		}
		if d, ok, _ := s.Succeeded(ctx, "web", "test", "aaa"); !ok || d.ID != a.ID {
			t.Errorf("succeeded aaa = %+v, %v", d, ok)
		}
		ds, _ := s.DeploysByDelivery(ctx, "p2")
		if len(ds) != 1 || ds[0].ID != b.ID {
			t.Errorf("deploys of delivery p2 = %+v", ds)
		}
	})
}

func TestReleasesAndCommands(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		useClock(s)
		r, created, err := s.CreateRelease(ctx, Release{Repo: "acme/web", Tag: "v1.2.0", SHA: "aaa", TaggedBy: "lead", State: ReleaseOpening})
		if err != nil || !created || r.ID == 0 {
			t.Fatalf("create = %+v, %v, %v", r, created, err)
		}
		if again, created, _ := s.CreateRelease(ctx, Release{Repo: "acme/web", Tag: "v1.2.0", SHA: "bbb", State: ReleaseOpening}); created || again.SHA != "aaa" {
			t.Fatalf("the same tag again = %+v, %v", again, created)
		}
		r.State, r.Issue, r.CheckRunID = ReleaseOpen, 12, 99
		if err := s.UpdateRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ReleaseByIssue(ctx, "acme/web", 12); err != nil || got.Tag != "v1.2.0" || got.State != ReleaseOpen {
			t.Errorf("by issue = %+v, %v", got, err)
		}
		if got, err := s.ReleaseByCheckRun(ctx, "acme/web", 99); err != nil || got.ID != r.ID {
			t.Errorf("by check run = %+v, %v", got, err)
		}
		if _, err := s.ReleaseByIssue(ctx, "acme/web", 13); !errors.Is(err, ErrNotFound) {
			t.Errorf("no release issue: %v", err)
		}

		c, err := s.RecordCommand(ctx, CommandRecord{Key: "comment:acme/web:5", Repo: "acme/web", Issue: 12, Actor: "po", Verb: "promote", Stage: "prod", Args: "/promote prod"})
		if err != nil || c.ID == 0 || c.Outcome != "" {
			t.Fatalf("record = %+v, %v", c, err)
		}
		if err := s.SetCommandReply(ctx, c.ID, 555); err != nil {
			t.Fatal(err)
		}
		if again, _ := s.RecordCommand(ctx, CommandRecord{Key: "comment:acme/web:5", Repo: "acme/web", Actor: "po", Verb: "promote"}); again.ID != c.ID || again.ReplyCommentID != 555 {
			t.Fatalf("the retry found %+v", again)
		}
		if err := s.FinishCommand(ctx, c.ID, "refused", "@po may not", 555); err != nil {
			t.Fatal(err)
		}
		cs, err := s.Commands(ctx, "acme/web", 10)
		if err != nil || len(cs) != 1 || cs[0].Outcome != "refused" || cs[0].Reason != "@po may not" {
			t.Errorf("commands = %+v, %v", cs, err)
		}
	})
}
