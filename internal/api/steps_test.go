package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
)

const image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// emptyAPI is the API over a fresh store.
func emptyAPI(t *testing.T) (http.Handler, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "api.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mux := http.NewServeMux()
	New(st, slog.New(slog.NewTextHandler(io.Discard, nil))).Register(mux)
	return mux, st
}

// place records r and, unless state is queued, moves it there with cp (a deploy.Checkpoint, or
// the stored bytes) as the pipeline would. It returns the deploy's id.
func place(t *testing.T, st *store.Store, r deploy.Request, state deploy.State, cp any) int64 {
	t.Helper()
	ctx := context.Background()
	rec, err := st.Record(ctx, store.Intake{Delivery: store.Delivery{ID: r.Trigger.Delivery, Event: r.Trigger.Event}, Deploys: []deploy.Request{r}})
	if err != nil {
		t.Fatal(err)
	}
	id := rec.Deploys[0].ID
	if state == deploy.Queued {
		return id
	}
	d, lease, err := st.ClaimDeploy(ctx, "test", time.Hour) // earlier deploys keep their leases
	if err != nil || d.ID != id {
		t.Fatalf("claimed deploy %d (%v), want %d", d.ID, err, id)
	}
	b, ok := cp.([]byte)
	if !ok {
		if b, err = json.Marshal(cp); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Advance(ctx, lease, store.Update{State: deploy.Preflight}); err != nil {
		t.Fatal(err)
	}
	if err := st.Advance(ctx, lease, store.Update{State: state, Checkpoint: b}); err != nil {
		t.Fatal(err)
	}
	return id
}

// shown is what a deployment's answer says of its checkpoint.
type shown struct {
	ID       int64               `json:"id"`
	State    string              `json:"state"`
	Mode     string              `json:"mode"`
	Step     string              `json:"step"`
	Progress string              `json:"progress"`
	Slot     string              `json:"slot"`
	Image    string              `json:"image"`
	Steps    []deploy.StepRecord `json:"steps"`
}

// TestDeploymentSteps proves a deployment's answer says, from its checkpoint, which step runs
// now and how far it got (the build phase while building, the pods while rolling out), which
// slot it goes to, which image it runs and every step so far; a finished deploy has no current
// step, and a queued one nothing yet but what it asked for.
func TestDeploymentSteps(t *testing.T) {
	h, st := emptyAPI(t)
	t1 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	req := func(n int, stage string) deploy.Request {
		return deploy.Request{App: "hello", Stage: stage, Repo: "acme/hello", SHA: fmt.Sprintf("c%d", n), InstallationID: 1,
			Trigger: deploy.Trigger{Event: "push", Delivery: fmt.Sprintf("d%d", n), Actor: "lead"}}
	}
	preflight := deploy.StepRecord{Name: "Preflight", Status: deploy.StepSucceeded, Started: t1, Finished: t1.Add(time.Second), Detail: "secret `hello/test`"}
	buildSteps := []deploy.StepRecord{preflight, {Name: "Build", Status: deploy.StepRunning, Started: t1.Add(time.Second), Detail: "phase BUILD", Link: "https://console.aws.amazon.com/codebuild"}}
	building := place(t, st, req(1, "test"), deploy.Building, deploy.Checkpoint{Steps: buildSteps, BuildPhase: "BUILD"})

	rolloutSteps := []deploy.StepRecord{preflight, {Name: "Build", Status: deploy.StepSucceeded}, {Name: "Rollout", Status: deploy.StepRunning, Detail: "api-prod-backup: 2 of 3 pods updated"}}
	rolling := place(t, st, req(2, "prod"), deploy.RollingOut, deploy.Checkpoint{Steps: rolloutSteps, BuildPhase: "COMPLETED",
		Image: image, Slot: "prod-backup", FromSlot: "prod", Progress: "api-prod-backup: 2 of 3 pods updated"})

	rollback := req(3, "alpha")
	rollback.Mode, rollback.Image = deploy.ModeImage, image+"-old"
	doneSteps := []deploy.StepRecord{preflight, {Name: "Rollout", Status: deploy.StepSucceeded, Detail: "1 Deployment(s) updated"}}
	rolledBack := place(t, st, rollback, deploy.Succeeded, deploy.Checkpoint{Steps: doneSteps}) // the image only on the request

	// A checkpoint that does not decode loses the steps, not what the request asked for.
	broken := req(4, "dev")
	broken.Mode, broken.Image = deploy.ModeImage, image
	unreadable := place(t, st, broken, deploy.RollingOut, []byte(`{"steps": "not a list"}`))

	sw := req(5, "staging")
	sw.Mode, sw.Slot = deploy.ModeSwitch, "blue"
	switchQueued := place(t, st, sw, deploy.Queued, deploy.Checkpoint{})

	tests := []struct {
		id   int64
		want shown
	}{
		{building, shown{ID: building, State: "building", Step: "Build", Progress: "phase BUILD", Steps: buildSteps}},
		{rolling, shown{ID: rolling, State: "rolling_out", Step: "Rollout", Progress: "api-prod-backup: 2 of 3 pods updated",
			Slot: "prod-backup", Image: image, Steps: rolloutSteps}},
		{rolledBack, shown{ID: rolledBack, State: "succeeded", Mode: "image", Image: image + "-old", Steps: doneSteps}},
		{switchQueued, shown{ID: switchQueued, State: "queued", Mode: "switch", Slot: "blue"}},
		{unreadable, shown{ID: unreadable, State: "rolling_out", Mode: "image", Image: image}},
	}
	var list struct{ Deployments []shown }
	code, body := get(t, h, "/api/v1/deployments")
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil {
		t.Fatalf("%d %s (%v)", code, body, err)
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("deployment %d", tt.id), func(t *testing.T) {
			code, body := get(t, h, fmt.Sprintf("/api/v1/deployments/%d", tt.id))
			var one shown
			if err := json.Unmarshal([]byte(body), &one); code != 200 || err != nil {
				t.Fatalf("%d %s (%v)", code, body, err)
			}
			if !reflect.DeepEqual(one, tt.want) {
				t.Errorf("deployments/%d says\n%+v\nwant\n%+v", tt.id, one, tt.want)
			}
			for _, d := range list.Deployments {
				if d.ID == tt.id && !reflect.DeepEqual(d, tt.want) {
					t.Errorf("the list says of %d\n%+v\nwant\n%+v", tt.id, d, tt.want)
				}
			}
		})
	}
	if len(list.Deployments) != len(tests) {
		t.Errorf("%d deployments listed, want %d", len(list.Deployments), len(tests))
	}
}
