package chaos

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// The annotations Stagecoach puts on what it changes in the cluster (internal/kube).
const (
	shaAnnotation    = "stagecoach.dev/sha"
	deployAnnotation = "stagecoach.dev/deploy"
)

// handOver is one piece of a killed replica's leased work (a deploy or a job it held when it
// was killed) and how long after the kill another replica claimed it; took is zero until then.
type handOver struct {
	kind   string // "deploy" or "job"
	id     int64
	token  int64 // the lease token the killed replica held
	killed time.Time
	took   time.Duration
}

// ownerPattern matches the lease owners of process pid: Stagecoach names them
// <kind>-<host>-<pid>-<8 hex digits>. Owners of binaries that did not name their process match
// nothing, and their hand-over is not measured.
func ownerPattern(pid int) string { return "%-" + strconv.Itoa(pid) + "-________" }

// killed notes the leased work process pid held when it was killed at: its leases can no
// longer be renewed, and observe times how long until each is claimed elsewhere.
func (w *world) killed(pid int, at time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var held []handOver
	for _, q := range []struct{ kind, sql string }{
		{"deploy", "SELECT id, lease_token FROM deploys WHERE lease_owner LIKE $1 AND state NOT IN " + finalStates},
		{"job", "SELECT id, lease_token FROM jobs WHERE lease_owner LIKE $1 AND state = 'running'"},
	} {
		for {
			rows, err := w.db.QueryContext(ctx, q.sql, ownerPattern(pid))
			if err == nil {
				for rows.Next() {
					h := handOver{kind: q.kind, killed: at}
					if err = rows.Scan(&h.id, &h.token); err != nil {
						break
					}
					held = append(held, h)
				}
				if err == nil {
					err = rows.Err()
				}
				rows.Close()
			}
			if err == nil || !wait(ctx, 100*time.Millisecond) { // PostgreSQL may be restarting
				break
			}
		}
	}
	w.mu.Lock()
	w.handOvers = append(w.handOvers, held...)
	w.mu.Unlock()
}

// observe watches, every 50 ms until ctx ends, for the killed replicas' work to be claimed by
// another replica (its lease token moves on) or to end.
func (w *world) observe(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		var open []int
		for i, h := range w.handOvers {
			if h.took == 0 {
				open = append(open, i)
			}
		}
		w.mu.Unlock()
		for _, i := range open {
			w.mu.Lock()
			h := w.handOvers[i]
			w.mu.Unlock()
			table, done := "deploys", "state IN "+finalStates
			if h.kind == "job" {
				table, done = "jobs", "state <> 'running'"
			}
			var moved bool
			err := w.db.QueryRowContext(ctx, fmt.Sprintf("SELECT lease_token <> $1 OR %s FROM %s WHERE id = $2", done, table), h.token, h.id).Scan(&moved)
			if err == nil && moved {
				w.mu.Lock()
				w.handOvers[i].took = max(time.Since(h.killed), time.Nanosecond)
				w.mu.Unlock()
			}
		}
	}
}

// clusterChange is a change of a target's Deployment that the cluster showed: the deploy whose
// change it is, by its annotations.
type clusterChange struct {
	deploy int64
	sha    string
}

// watchCluster records, per target, every change of the deploy annotation on its Deployment,
// in the order the API server serves them, until ctx ends.
func (w *world) watchCluster(ctx context.Context) {
	for stage, ns := range w.ns {
		go w.watchNamespace(ctx, stage, ns)
	}
}

func (w *world) watchNamespace(ctx context.Context, stage, ns string) {
	api := w.o.Kube.Clientset().AppsV1().Deployments(ns)
	rv := ""
	for ctx.Err() == nil {
		if rv == "" {
			list, err := api.List(ctx, metav1.ListOptions{})
			if err != nil {
				wait(ctx, 200*time.Millisecond)
				continue
			}
			for i := range list.Items {
				w.sawDeployment(stage, &list.Items[i])
			}
			rv = list.ResourceVersion
		}
		wt, err := api.Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
		if err != nil {
			rv = ""
			wait(ctx, 200*time.Millisecond)
			continue
		}
		for ev := range wt.ResultChan() {
			d, ok := ev.Object.(*appsv1.Deployment)
			if !ok || ev.Type == watch.Error {
				rv = "" // too old: list again
				break
			}
			rv = d.ResourceVersion
			w.sawDeployment(stage, d)
		}
		wt.Stop()
	}
}

// sawDeployment records a Deployment's deploy annotation if it changed.
func (w *world) sawDeployment(stage string, d *appsv1.Deployment) {
	id, err := strconv.ParseInt(strings.TrimSpace(d.Annotations[deployAnnotation]), 10, 64)
	if err != nil {
		return // not changed by Stagecoach yet
	}
	key := d.Name + "/" + stage
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := w.cluster[key]
	if n := len(seen); n > 0 && seen[n-1].deploy == id {
		return
	}
	w.cluster[key] = append(seen, clusterChange{deploy: id, sha: d.Annotations[shaAnnotation]})
}
