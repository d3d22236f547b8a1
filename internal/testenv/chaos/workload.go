package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// event is one thing the workload does, at a moment of its run.
type event struct {
	at time.Duration
	do func(ctx context.Context)
}

// play pushes, gives commands, redelivers duplicates and injects faults on a schedule spread
// over Options.Duration. It returns once the schedule has been played and every fault it began
// has ended (PostgreSQL is up again, GitHub answers).
func (w *world) play(ctx context.Context) {
	o := w.o
	var evs []event
	pushes := o.Pushes - len(targets) // the last round comes after the workload
	order := slices.Clone(targets)
	for i := range pushes {
		if i%len(targets) == 0 {
			w.rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		}
		t, round := order[i%len(targets)], i/len(targets)
		evs = append(evs, event{o.Duration * time.Duration(i) / time.Duration(pushes), func(context.Context) { w.push(t, round) }})
	}
	for range o.Commands {
		evs = append(evs, event{w.within(0.05, 0.9), func(context.Context) { w.command() }})
	}
	for range max(pushes/4, 1) {
		evs = append(evs, event{w.within(0.05, 0.95), func(context.Context) { w.rd.duplicate(w.rng) }})
	}
	var faults sync.WaitGroup
	if !o.NoFaults {
		evs = append(evs,
			event{w.within(0.1, 0.2), func(context.Context) { w.throttleCodeBuild(8) }},
			event{w.within(0.25, 0.35), func(ctx context.Context) { faults.Go(func() { w.gitHubOutage(ctx, 3*time.Second) }) }},
			event{w.within(0.4, 0.5), func(ctx context.Context) { faults.Go(func() { w.restartPostgres(ctx, 1500*time.Millisecond) }) }},
			event{w.within(0.55, 0.65), func(context.Context) { w.secondaryRateLimit(4, 2*time.Second) }},
			event{w.within(0.7, 0.8), func(context.Context) { w.throttleCodeBuild(8) }},
			event{w.within(0.8, 0.9), func(ctx context.Context) { faults.Go(func() { w.gitHubOutage(ctx, 2*time.Second) }) }},
		)
	}
	slices.SortStableFunc(evs, func(a, b event) int { return int(a.at - b.at) })
	began := time.Now()
	for _, ev := range evs {
		if !wait(ctx, time.Until(began.Add(ev.at))) {
			break
		}
		ev.do(ctx)
	}
	faults.Wait()
}

// within is a random moment between fractions lo and hi of the workload's duration.
func (w *world) within(lo, hi float64) time.Duration {
	return time.Duration((lo + (hi-lo)*w.rng.Float64()) * float64(w.o.Duration))
}

// wait waits d, or until ctx ends (false). It paces the workload; it synchronizes nothing.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// push pushes a new commit to the target's branch, as a person would.
func (w *world) push(t target, round int) {
	sha := commit(fmt.Sprintf("%s %d", t, round))
	w.mu.Lock()
	w.pushes[t.String()] = append(w.pushes[t.String()], sha)
	w.mu.Unlock()
	w.gh.PushBranch(t.repo, t.branch, sha, person)
}

// command opens a pull request and comments `/deploy <stage> <sha>` on it, for a commit pushed
// to the target earlier: each command on its own pull request, so its reply is the one
// comment the App leaves there.
func (w *world) command() {
	w.mu.Lock()
	var pushed []target // a command names a commit pushed before it, so only these qualify
	for _, t := range targets {
		if len(w.pushes[t.String()]) > 0 {
			pushed = append(pushed, t)
		}
	}
	if len(pushed) == 0 {
		// Early in a short run nothing may be pushed yet: push first, so every command the
		// run was asked for is given (a run with fewer proves less than it says).
		w.mu.Unlock()
		t := targets[w.rng.IntN(len(targets))]
		w.push(t, -1)
		w.mu.Lock()
		pushed = append(pushed, t)
	}
	t := pushed[w.rng.IntN(len(pushed))]
	shas := w.pushes[t.String()]
	sha := shas[w.rng.IntN(len(shas))]
	w.prNumber++
	pr := 100 + w.prNumber
	w.commands = append(w.commands, command{t: t, repo: t.repo, pr: pr, sha: sha, at: time.Now()})
	w.mu.Unlock()
	w.gh.AddPull(t.repo, githubtest.Pull{Number: pr, Title: fmt.Sprintf("Chaos %d", pr), User: person,
		HeadSHA: sha, HeadRef: fmt.Sprintf("chaos-%d", pr), State: "open"})
	w.gh.Comment(t.repo, pr, person, fmt.Sprintf("/deploy %s %s", t.stage, sha))
}

// lastRound pushes one more commit to every target: the newest request each gets, and so what
// each must run at the end.
func (w *world) lastRound() {
	order := slices.Clone(targets)
	w.rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
	for _, t := range order {
		sha := commit(t.String() + " last")
		w.mu.Lock()
		w.pushes[t.String()] = append(w.pushes[t.String()], sha)
		w.last[t.String()] = sha
		w.mu.Unlock()
		w.gh.PushBranch(t.repo, t.branch, sha, person)
	}
}

func (w *world) throttleCodeBuild(n int) {
	w.aws.Throttle("codebuild", n)
	w.fault("CodeBuild throttles the next %d calls", n)
}

func (w *world) secondaryRateLimit(n int, retryAfter time.Duration) {
	w.gh.SecondaryRateLimit(n, retryAfter)
	w.fault("GitHub answers the next %d calls with a secondary rate limit (Retry-After: %s)", n, retryAfter)
}

func (w *world) gitHubOutage(ctx context.Context, d time.Duration) {
	w.gh.SetOutage(http.StatusBadGateway)
	w.fault("GitHub answers 502 Bad Gateway for %s", d)
	wait(ctx, d)
	w.gh.SetOutage(0)
}

func (w *world) restartPostgres(ctx context.Context, down time.Duration) {
	began := time.Now()
	err := w.o.Postgres.Restart(ctx, func() { wait(ctx, down) })
	if err != nil {
		w.violation("restarting PostgreSQL: %v", err)
		return
	}
	w.mu.Lock()
	w.pgRestarts++
	w.mu.Unlock()
	w.fault("PostgreSQL restarted (fast shutdown, down %s, back after %s)", down, time.Since(began).Round(time.Millisecond))
}

// kill is one SIGKILL of a replica.
type kill struct {
	at      time.Time
	replica int
	pid     int
}

// chaos kills a random replica every 0.6–1.4 × KillEvery and starts it again 0.2–1.5 s later,
// until ctx ends; it returns once the last one killed has been started again.
func (w *world) chaos(ctx context.Context) {
	if w.o.KillEvery <= 0 {
		return
	}
	rng := rand.New(rand.NewPCG(w.o.Seed+1, w.o.Seed^0xc4a05))
	for {
		every := time.Duration((0.6 + 0.8*rng.Float64()) * float64(w.o.KillEvery))
		if !wait(ctx, every) {
			return
		}
		r := w.reps[rng.IntN(len(w.reps))]
		if !r.up.Load() {
			continue // still starting after an exit
		}
		at := time.Now()
		pid := r.kill()
		w.mu.Lock()
		w.kills = append(w.kills, kill{at: at, replica: r.n, pid: pid})
		w.mu.Unlock()
		w.killed(pid, at)
		w.logf("chaos: SIGKILL replica %d (pid %d)", r.n, pid)
		wait(ctx, time.Duration((0.2+1.3*rng.Float64())*float64(time.Second)))
		if err := r.start(context.WithoutCancel(ctx)); err != nil {
			w.violation("restarting replica %d: %v", r.n, err)
		}
	}
}

// settle waits, up to Options.Settle, until everything the workload asked for has ended: every
// delivery taken, every deploy final, no job left to run. It returns "" then, or what had not
// ended at the deadline.
func (w *world) settle(ctx context.Context) string {
	deadline := time.Now().Add(w.o.Settle)
	reported := map[string]bool{}
	for {
		why := w.unsettled(ctx)
		_, refused := w.rd.untaken(ctx)
		for _, r := range refused {
			if !reported[r] {
				reported[r] = true
				w.violation("a delivery was refused: %s", r)
			}
		}
		if why == "" {
			return ""
		}
		if time.Now().After(deadline) || !wait(ctx, 250*time.Millisecond) {
			return fmt.Sprintf("after %s: %s", w.o.Settle, why)
		}
	}
}

// unsettled says what has not ended yet, or "".
func (w *world) unsettled(ctx context.Context) string {
	var why []string
	if waiting, _ := w.rd.untaken(ctx); waiting > 0 {
		why = append(why, fmt.Sprintf("%d deliveries not taken", waiting))
	}
	var running int
	if err := w.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM deploys WHERE state NOT IN "+finalStates).Scan(&running); err != nil {
		return "reading the store: " + err.Error()
	}
	if running > 0 {
		why = append(why, fmt.Sprintf("%d deploys not final", running))
	}
	rows, err := w.db.QueryContext(ctx, "SELECT kind, state, attempts, last_error FROM jobs WHERE state NOT IN ('done', 'failed') ORDER BY id LIMIT 5")
	if err != nil {
		return "reading the store: " + err.Error()
	}
	defer rows.Close()
	for rows.Next() {
		var kind, state, lastErr string
		var attempts int
		if err := rows.Scan(&kind, &state, &attempts, &lastErr); err != nil {
			return "reading the store: " + err.Error()
		}
		why = append(why, fmt.Sprintf("job %s %s after %d attempts (%s)", kind, state, attempts, lastErr))
	}
	if err := rows.Err(); err != nil {
		return "reading the store: " + err.Error()
	}
	return strings.Join(why, "; ")
}

// finalStates are the deploy states nothing follows.
const finalStates = "('succeeded', 'failed', 'rolled_back', 'superseded', 'cancelled')"
