package config

import (
	"fmt"
	"sync"
	"testing"
)

// A repository's apps replace the server's of the same repository only; an app a reader holds
// keeps what it said when the repository's file changes (copy-on-write), and nil puts the
// server's back.
func TestSetRepoAppsIsCopyOnWrite(t *testing.T) {
	c := repoServer(t)
	held := c.App("web")
	apps, err := readRepoFile(t, c, "valid")
	if err != nil {
		t.Fatal(err)
	}
	c.SetRepoApps("ACME/web", apps)
	if got := c.App("web").Stages["test"].Buildspec; got != "ci/test.yml" {
		t.Errorf("after the file: web's test buildspec = %q, want ci/test.yml", got)
	}
	if _, ok := c.App("worker").Stages["alpha"]; !ok {
		t.Error("after the file: worker does not deploy to alpha")
	}
	if got := c.App("payments"); got == nil || got.Stages["prod"].SecretID != "payments/prod" {
		t.Errorf("another repository's app changed: %+v", got)
	}
	if got := held.Stages["test"].Buildspec; got != "buildspec.yaml" {
		t.Errorf("an app held before the change changed under its reader: buildspec %q", got)
	}
	if n := len(c.AppsForRepo("acme/web")); n != 2 {
		t.Errorf("AppsForRepo(acme/web) = %d apps, want 2", n)
	}
	apps[0].Stages["test"] = AppStage{Buildspec: "changed-by-the-caller"}
	if got := c.App("web").Stages["test"].Buildspec; got != "ci/test.yml" {
		t.Errorf("the caller's slice is shared with the registry: %q", got)
	}
	if got := c.WithApps(c.EffectiveApps()[:1]); len(got.EffectiveApps()) != 1 || got.App("worker") != nil {
		t.Error("WithApps does not fix the copy's apps")
	}
	c.SetRepoApps("acme/web", nil)
	if got := c.App("web").Stages["test"].Buildspec; got != "buildspec.yaml" {
		t.Errorf("nil did not put the server's apps back: %q", got)
	}
}

// Readers and a writer at once: every lookup sees one whole generation (web's and worker's
// buildspecs of the same write), with no data race (go test -race).
func TestEffectiveAppsUnderConcurrentChanges(t *testing.T) {
	c := repoServer(t)
	gen := func(i int) []App {
		apps := cloneApps(c.serverApps("acme/web"))
		for j := range apps {
			s := apps[j].Stages["test"]
			s.Buildspec = fmt.Sprintf("gen-%d.yml", i)
			apps[j].Stages["test"] = s
		}
		return apps
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				apps := c.AppsForRepo("acme/web")
				if a, b := apps[0].Stages["test"].Buildspec, apps[1].Stages["test"].Buildspec; a != b {
					t.Errorf("one lookup saw two generations: %s and %s", a, b)
					return
				}
			}
		})
	}
	for i := range 200 {
		c.SetRepoApps("acme/web", gen(i))
	}
	close(stop)
	wg.Wait()
	if got := c.App("worker").Stages["test"].Buildspec; got != "gen-199.yml" {
		t.Errorf("after the writes: %q, want the last", got)
	}
}
