package chatops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
)

// diesBeforeRecordingTheReply is a store whose process dies right after the reply comment was
// made on GitHub: recording which comment it is fails, and nothing after it happens.
type diesBeforeRecordingTheReply struct{ *store.Store }

var errDied = errors.New("the process died here")

func (diesBeforeRecordingTheReply) SetCommandReply(context.Context, int64, int64) error {
	return errDied
}

// TestCommandRetriedAfterItsReplyAndRefusedThenSaysSoAndStartsNothing: the chaos benchmark left
// a reply at "⏳ deploying ... Progress follows in this comment." for ever. The first attempt of
// a /deploy was admitted, recorded its deploy held, made its reply and died before recording it;
// the retry's gate refused (the stage had been locked meanwhile), but found the reply by its
// marker and kept the first attempt's text, and the held deploy was left behind. Now the retry's
// answer replaces the reply, and the deploy it will not carry out is cancelled.
func TestCommandRetriedAfterItsReplyAndRefusedThenSaysSoAndStartsNothing(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	f, err := githubapp.New(githubapp.Options{AppID: w.gh.AppID(), PrivateKey: w.gh.PrivateKeyPEM(), BaseURL: w.gh.URL()})
	if err != nil {
		t.Fatal(err)
	}
	dying := New(diesBeforeRecordingTheReply{w.st}, f, Options{Config: w.cfg, WebURL: "https://github.com",
		Now: func() time.Time { return w.now }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})

	body := "/deploy test " + shaB
	id := w.gh.Comment(repo, 1, "dev", body)
	job := jobs.Job{Kind: jobs.KindComment, Payload: mustJSON(t, jobs.Comment{Repo: repo, InstallationID: 1, Issue: 1, CommentID: id,
		Body: body, Author: "dev", AuthorType: "User", Association: w.gh.AuthorAssociation(repo, "dev"), Delivery: fmt.Sprintf("delivery-%d", id)})}
	if err := dying.Comments().Run(ctx, job); !errors.Is(err, errDied) {
		t.Fatalf("the first attempt: %v, want it to die", err)
	}
	held, err := w.st.DeploysByDelivery(ctx, fmt.Sprintf("delivery-%d", id))
	if err != nil || len(held) != 1 || !held[0].Held {
		t.Fatalf("after the first attempt: %+v, %v; want one held deploy", held, err)
	}

	w.say(2, "lead", `/lock test "load test"`)
	if err := w.x.Comments().Run(ctx, job); err != nil {
		t.Fatalf("the retry: %v", err)
	}

	var replies []string
	for _, c := range w.gh.Comments(repo, 1) {
		if c.ID > id && c.User == "" {
			replies = append(replies, c.Body)
		}
	}
	if len(replies) != 1 {
		t.Fatalf("%d replies, want the one: %q", len(replies), replies)
	}
	if strings.Contains(replies[0], "⏳") || !strings.Contains(replies[0], "locked") {
		t.Errorf("the reply still says what the first attempt decided, not the retry's refusal:\n%s", replies[0])
	}
	d, err := w.st.Deploy(ctx, held[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != deploy.Cancelled {
		t.Errorf("the refused command's deploy is %s (held %v), want cancelled", d.State, d.Held)
	}
}
