package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
)

// prod's health endpoint, which the sandbox's configuration has Stagecoach verify after every
// deploy to prod. It plays the app as its users reach it: it asks the cluster which slot prod's
// Service selects, which image that slot's Deployment runs and, through the image's tags in ECR,
// which commit it was built from; and it answers as that version of the app would. Every version
// is healthy but one: the commit in brokenCommits, whose release works on test and alpha and
// fails on prod (its payment provider account there lacks what it needs). So a check never
// answers from a script the story sets: it answers for what runs behind the Service at the
// moment it is asked, and a switch back makes it healthy again.

// The check's settings: short enough for the story, with room for a busy machine. A healthy
// version passes after healthSuccesses answers in a row; a broken one fails once that can no
// longer happen within healthDuration.
const (
	healthCheck     = "prod-health"
	healthBody      = `"status":"ok"`
	healthInterval  = 200 * time.Millisecond
	healthTimeout   = time.Second
	healthSuccesses = 2
	healthDuration  = 4 * time.Second
)

// brokenCommits are the commits whose build fails its health endpoint on prod, and why.
var brokenCommits = map[string]string{
	commit("merge #15"): "payment provider: 403 Forbidden: API v2 is not enabled for account acme-prod",
}

// healthAnswer is what the health endpoint said once.
type healthAnswer struct {
	At      time.Time
	Slot    string
	Version string // the commit's short sha, or the image when it is none of the sandbox's builds
	Status  int
}

// health is prod's health endpoint.
type health struct {
	srv   *httptest.Server
	world *World
	mu    sync.Mutex
	log   []healthAnswer
}

// startHealth serves prod's health endpoint on a free loopback port.
func (w *World) startHealth() {
	h := &health{world: w}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	w.health = h
}

// URL is the health endpoint's URL, as the configuration's check names it.
func (h *health) URL() string { return h.srv.URL + "/healthz" }

func (h *health) close() { h.srv.Close() }

// serve answers for the version of the app prod's Service sends users to now.
func (h *health) serve(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/healthz" {
		http.NotFound(rw, r)
		return
	}
	slot, built, image, err := h.world.running(r.Context())
	status, body := http.StatusOK, map[string]string{"status": "ok"}
	version := image
	switch {
	case err != nil:
		// The cluster could not say what runs: no version can vouch for itself.
		status, body = http.StatusServiceUnavailable, map[string]string{"status": "unknown", "error": err.Error()}
	case built != "":
		version = deploy.ShortSHA(built)
		if why := brokenBuild(built); why != "" {
			status, body = http.StatusServiceUnavailable, map[string]string{"status": "failing", "error": why}
		}
	}
	body["version"], body["slot"] = version, slot
	h.mu.Lock()
	h.log = append(h.log, healthAnswer{At: time.Now(), Slot: slot, Version: version, Status: status})
	h.mu.Unlock()
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(body)
}

// answers are the answers the endpoint gave for version.
func (h *health) answers(version string) []healthAnswer {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []healthAnswer
	for _, a := range h.log {
		if a.Version == version {
			out = append(out, a)
		}
	}
	return out
}

// brokenBuild is why the build of the commit starting with prefix fails its health check, or
// "" when it does not.
func brokenBuild(prefix string) string {
	for c, why := range brokenCommits {
		if strings.HasPrefix(c, prefix) {
			return why
		}
	}
	return ""
}

// running is what prod's users reach now: the slot its Service selects, the image that slot's
// Deployment runs, and the start of the commit that image was built from ("" when it is none of
// the sandbox's builds, as the image the stages start with is not). A build pushes its image
// with the tag <sha[:12]>-<stage>-<deploy>, and the Deployment runs it by digest.
func (w *World) running(ctx context.Context) (slot, built, image string, err error) {
	if slot, err = w.kube.liveSlot(ctx); err != nil {
		return "", "", "", fmt.Errorf("reading prod's Service: %w", err)
	}
	if image, err = w.kube.image(ctx, "prod", config.SlotDeployment("api", slot), "api"); err != nil {
		return slot, "", "", fmt.Errorf("reading prod's Deployment for slot %s: %w", slot, err)
	}
	repository, digest, ok := strings.Cut(image, "@")
	if !ok || repository != imageRepository {
		return slot, "", image, nil
	}
	for _, tag := range w.AWS.ECR.Tags(imageRepository, digest) {
		if prefix, _, _ := strings.Cut(tag, "-"); len(prefix) == 12 {
			return slot, prefix, image, nil
		}
	}
	return slot, "", image, nil
}
