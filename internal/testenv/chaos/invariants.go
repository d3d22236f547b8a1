package chaos

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// storedDeploy is a deploy as the store's table holds it (columns every schema since 0003 has).
type storedDeploy struct {
	id                int64
	app, stage, repo  string
	sha, state, image string
	mode, trigger     string
	started, finished int64 // unix microseconds; 0 when it never started or has not ended
	triggerIssue      int
	target            string // app/stage
}

func (w *world) deploys(ctx context.Context) ([]storedDeploy, error) {
	rows, err := w.db.QueryContext(ctx, `SELECT id, app, stage, repo, sha, state, image, mode, started_at, finished_at,
		trigger_event, trigger_issue FROM deploys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("reading the store's deploys: %w", err)
	}
	defer rows.Close()
	var out []storedDeploy
	for rows.Next() {
		var d storedDeploy
		if err := rows.Scan(&d.id, &d.app, &d.stage, &d.repo, &d.sha, &d.state, &d.image, &d.mode, &d.started, &d.finished,
			&d.trigger, &d.triggerIssue); err != nil {
			return nil, fmt.Errorf("reading the store's deploys: %w", err)
		}
		d.target = d.app + "/" + d.stage
		out = append(out, d)
	}
	return out, rows.Err()
}

// check reads the outcome from the store, GitHub, AWS and the cluster and checks the
// invariants (see the package comment), filling in the figures.
func (w *world) check(ctx context.Context) *Result {
	res := w.figures()
	ds, err := w.deploys(ctx)
	if err != nil {
		w.violation("%v", err)
	}
	res.Deploys = len(ds)
	res.States = map[string]int{}
	byTarget := map[string][]storedDeploy{}
	byID := map[int64]storedDeploy{}
	for _, d := range ds {
		res.States[d.state]++
		byTarget[d.target] = append(byTarget[d.target], d)
		byID[d.id] = d
		if !isFinal(d.state) {
			w.violation("deploy %d (%s) is %s, not final", d.id, d.target, d.state)
		}
	}
	w.checkNothingLost(byTarget)
	w.checkOneAtATime(byTarget)
	w.checkLastPushWins(ctx, byTarget)
	w.checkBuilds(ds, byID)
	res.DuplicateReports, res.StaleReports = w.checkReports(ds, byID)
	var dupReplies int
	res.RepliesWaiting, dupReplies = w.checkReplies()
	res.DuplicateReports += dupReplies
	for _, p := range w.gh.Problems() {
		w.violation("GitHub test server: %s", p)
	}
	for _, p := range w.aws.Problems() {
		w.violation("AWS test servers: %s", p)
	}
	w.mu.Lock()
	res.Violations = slices.Clone(w.violations)
	w.mu.Unlock()
	return res
}

func isFinal(state string) bool {
	return strings.Contains(finalStates, "'"+state+"'")
}

// checkNothingLost: every push the workload made was recorded as a deploy of its commit.
func (w *world) checkNothingLost(byTarget map[string][]storedDeploy) {
	w.mu.Lock()
	pushes := w.pushes
	w.mu.Unlock()
	for target, shas := range pushes {
		have := map[string]bool{}
		for _, d := range byTarget[target] {
			have[d.sha] = true
		}
		for _, sha := range shas {
			if !have[sha] {
				w.violation("the push of %s to %s was never recorded as a deploy", sha[:7], target)
			}
		}
	}
}

// checkOneAtATime: on each target, each deploy that started did so after the one before it
// ended (the store's times), and the cluster never saw an older deploy's change after a newer
// deploy's (a lease that lapsed while its replica still acted would show here).
func (w *world) checkOneAtATime(byTarget map[string][]storedDeploy) {
	for target, ds := range byTarget {
		for _, v := range overlapping(ds) {
			w.violation("%s: %s", target, v)
		}
	}
	w.mu.Lock()
	cluster := map[string][]clusterChange{}
	for k, v := range w.cluster {
		cluster[k] = slices.Clone(v)
	}
	w.mu.Unlock()
	for target, seen := range cluster {
		for _, v := range olderAfterNewer(seen) {
			w.violation("%s: %s", target, v)
		}
	}
}

// overlapping says which of one target's deploys started before the one that started before
// it had ended, by the store's times.
func overlapping(ds []storedDeploy) []string {
	var started []storedDeploy
	for _, d := range ds {
		if d.started != 0 {
			started = append(started, d)
		}
	}
	slices.SortFunc(started, func(a, b storedDeploy) int { return cmp.Compare(a.started, b.started) })
	var out []string
	for i := 1; i < len(started); i++ {
		prev, d := started[i-1], started[i]
		if prev.finished == 0 || d.started < prev.finished {
			out = append(out, fmt.Sprintf("deploy %d started while deploy %d ran", d.id, prev.id))
		}
	}
	return out
}

// olderAfterNewer says where the cluster saw a deploy's change after a newer deploy's.
func olderAfterNewer(seen []clusterChange) []string {
	var out []string
	newest := int64(0)
	for _, c := range seen {
		if c.deploy < newest {
			out = append(out, fmt.Sprintf("the cluster saw deploy %d's change after deploy %d's", c.deploy, newest))
		}
		newest = max(newest, c.deploy)
	}
	return out
}

// checkLastPushWins: on each target the newest deploy is the last push's and succeeded, the
// store says it is what runs, and the cluster runs its image, annotated with its commit, rolled
// out completely.
func (w *world) checkLastPushWins(ctx context.Context, byTarget map[string][]storedDeploy) {
	w.mu.Lock()
	last := w.last
	w.mu.Unlock()
	for _, t := range targets {
		sha, ds := last[t.String()], byTarget[t.String()]
		if sha == "" || len(ds) == 0 {
			w.violation("%s: no last push, or no deploy", t)
			continue
		}
		newest := ds[len(ds)-1]
		if newest.sha != sha || newest.state != "succeeded" {
			w.violation("%s: the newest deploy is %d of %s (%s), not the last push's %s succeeded", t, newest.id, newest.sha[:7], newest.state, sha[:7])
		}
		var live *storedDeploy
		for i := len(ds) - 1; i >= 0; i-- {
			if ds[i].state == "succeeded" {
				live = &ds[i]
				break
			}
		}
		if live == nil || live.sha != sha {
			w.violation("%s: the store says %v is live, not the last push %s", t, live, sha[:7])
			continue
		}
		dep, err := w.o.Kube.Clientset().AppsV1().Deployments(w.ns[t.stage]).Get(ctx, t.app, metav1.GetOptions{})
		if err != nil {
			w.violation("%s: reading its Deployment: %v", t, err)
			continue
		}
		img, built := dep.Spec.Template.Spec.Containers[0].Image, w.builtImage(live.id)
		st, want := dep.Status, *dep.Spec.Replicas
		switch {
		case dep.Annotations[shaAnnotation] != sha || dep.Annotations[deployAnnotation] != strconv.FormatInt(live.id, 10):
			w.violation("%s: the cluster runs deploy %s of %s, not deploy %d of the last push %s", t,
				dep.Annotations[deployAnnotation], dep.Annotations[shaAnnotation], live.id, sha[:7])
		case img != built:
			w.violation("%s: the cluster runs image %s, but deploy %d built %q", t, img, live.id, built)
		case st.ObservedGeneration < dep.Generation || st.UpdatedReplicas != want || st.AvailableReplicas != want || st.Replicas != want:
			w.violation("%s: the rollout of deploy %d is not complete: %+v", t, live.id, st)
		}
	}
}

// builtImage is the image deploy id's build pushed, by digest, as ECR has it ("" if none).
func (w *world) builtImage(id int64) string {
	for _, b := range w.aws.CodeBuild.Builds() {
		env := map[string]string{}
		for _, e := range b.Env {
			env[e.Name] = e.Value
		}
		if env["STAGECOACH_DEPLOY"] == strconv.FormatInt(id, 10) {
			if digest := w.aws.ECR.Digest(env["IMAGE_REPOSITORY"], env["IMAGE_TAG"]); digest != "" {
				return env["IMAGE_REPOSITORY"] + "@" + digest
			}
		}
	}
	return ""
}

// checkBuilds: at most one CodeBuild build per deploy, and exactly one for every deploy that
// built and succeeded.
func (w *world) checkBuilds(ds []storedDeploy, byID map[int64]storedDeploy) {
	builds := map[int64]int{}
	for _, b := range w.aws.CodeBuild.Builds() {
		for _, e := range b.Env {
			if e.Name == "STAGECOACH_DEPLOY" {
				id, _ := strconv.ParseInt(e.Value, 10, 64)
				builds[id]++
			}
		}
	}
	for id, n := range builds {
		if n > 1 {
			w.violation("deploy %d (%s) started %d CodeBuild builds", id, byID[id].target, n)
		}
	}
	for _, d := range ds {
		if d.state == "succeeded" && (d.mode == "" || d.mode == "build") && builds[d.id] != 1 {
			w.violation("deploy %d (%s) succeeded with %d builds", d.id, d.target, builds[d.id])
		}
	}
}

// conclusion is the check-run conclusion of a final deploy state (internal/report).
var conclusion = map[string]string{"succeeded": "success", "failed": "failure", "rolled_back": "failure", "superseded": "skipped", "cancelled": "cancelled"}

// checkReports: one check run per deploy with its final conclusion; one GitHub Deployment per
// deploy that started, whose statuses are each sent once and end as the deploy ended; no
// status sent after a newer deploy's status for the same environment; nothing left queued or
// in progress. It returns the duplicate and stale reports it found.
func (w *world) checkReports(ds []storedDeploy, byID map[int64]storedDeploy) (duplicates, stale int) {
	runs, deps := map[int64]int{}, map[int64]int{}
	envStatuses := map[string][]status{}
	for _, repo := range []string{"acme/web", "acme/api"} {
		for _, r := range w.gh.CheckRuns(repo) {
			id, err := strconv.ParseInt(r.ExternalID, 10, 64)
			d, ok := byID[id]
			if err != nil || !ok {
				w.violation("check run %d (%s on %s) reports no deploy (external_id %q)", r.ID, r.Name, r.HeadSHA[:7], r.ExternalID)
				continue
			}
			runs[id]++
			if r.Status != "completed" || r.Conclusion != conclusion[d.state] {
				w.violation("check run %d of deploy %d (%s, %s) is %s/%s", r.ID, id, d.target, d.state, r.Status, r.Conclusion)
			}
		}
		for _, gd := range w.gh.Deployments(repo) {
			var p struct {
				Deploy int64 `json:"stagecoach_deploy"`
			}
			_ = json.Unmarshal([]byte(gd.Payload), &p)
			d, ok := byID[p.Deploy]
			if !ok {
				w.violation("GitHub Deployment %d reports no deploy (payload %s)", gd.ID, gd.Payload)
				continue
			}
			deps[d.id]++
			seen := map[string]bool{}
			last := ""
			for _, s := range gd.Statuses {
				if s.ByGitHub {
					continue // GitHub's own inactive status, once a newer Deployment succeeded
				}
				if seen[s.State] {
					duplicates++
					w.violation("GitHub Deployment %d of deploy %d has status %s twice", gd.ID, d.id, s.State)
				}
				seen[s.State], last = true, s.State
				envStatuses[repo+":"+gd.Environment] = append(envStatuses[repo+":"+gd.Environment], status{d.id, s.ID, s.State})
			}
			want := map[string]string{"succeeded": "success", "failed": "failure", "rolled_back": "failure"}[d.state]
			if last != want && !(want == "success" && last == "inactive") {
				w.violation("GitHub Deployment %d of deploy %d (%s, %s) ends with status %q, want %q", gd.ID, d.id, d.target, d.state, last, want)
			}
		}
	}
	for _, d := range ds {
		if n := runs[d.id]; n != 1 {
			duplicates += max(n-1, 0)
			w.violation("deploy %d (%s, %s) has %d check runs, want 1", d.id, d.target, d.state, n)
		}
		want := 0
		if d.started != 0 {
			want = 1
		}
		if n := deps[d.id]; n != want {
			duplicates += max(n-1, 0)
			w.violation("deploy %d (%s, %s) has %d GitHub Deployments, want %d", d.id, d.target, d.state, n, want)
		}
	}
	for env, ss := range envStatuses {
		for _, v := range statusesAfterNewer(ss) {
			stale++
			w.violation("%s: %s", env, v)
		}
	}
	return duplicates, stale
}

// status is a Deployment status Stagecoach sent: its id (GitHub's, in the order GitHub made
// them), the deploy it reports and its state.
type status struct {
	deploy, id int64
	state      string
}

// statusesAfterNewer says which of an environment's statuses were sent after a status of a
// newer deploy. The one exception is what a newer deploy's success sends on purpose: "inactive"
// on the deployment it replaced, after that success; an inactive status with no newer success
// before it retired a deployment that was still the live one.
func statusesAfterNewer(ss []status) []string {
	ss = slices.Clone(ss)
	slices.SortFunc(ss, func(a, b status) int { return cmp.Compare(a.id, b.id) })
	var out []string
	newest, newestSuccess := int64(0), int64(0)
	for _, s := range ss {
		if s.state == "inactive" {
			if newestSuccess <= s.deploy {
				out = append(out, fmt.Sprintf("deploy %d was marked inactive before a newer deploy succeeded", s.deploy))
			}
			continue
		}
		if s.deploy < newest {
			out = append(out, fmt.Sprintf("a status of deploy %d was sent after one of the newer deploy %d", s.deploy, newest))
		}
		newest = max(newest, s.deploy)
		if s.state == "success" {
			newestSuccess = max(newestSuccess, s.deploy)
		}
	}
	return out
}

// checkReplies: each command got one reply from the App, and it reached a final text.
func (w *world) checkReplies() (waiting, duplicates int) {
	w.mu.Lock()
	cmds := slices.Clone(w.commands)
	w.mu.Unlock()
	for _, c := range cmds {
		var replies []string
		for _, cm := range w.gh.Comments(c.repo, c.pr) {
			if cm.User == "" { // the App's
				replies = append(replies, cm.Body)
			}
		}
		switch {
		case len(replies) == 0:
			waiting++
			w.violation("%s#%d: /deploy %s %s got no reply", c.repo, c.pr, c.t.stage, c.sha[:7])
		case len(replies) > 1:
			duplicates += len(replies) - 1
			w.violation("%s#%d: /deploy %s %s got %d replies", c.repo, c.pr, c.t.stage, c.sha[:7], len(replies))
		}
		for _, r := range replies {
			if head := headline(r); strings.Contains(head, "⏳") {
				waiting++
				w.violation("%s#%d: the reply to /deploy %s %s was left at %q", c.repo, c.pr, c.t.stage, c.sha[:7], head)
			}
		}
	}
	return waiting, duplicates
}

// headline is a comment's first visible line: hidden markers and blank lines skipped.
func headline(body string) string {
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "<!--") {
			return line
		}
	}
	return ""
}
