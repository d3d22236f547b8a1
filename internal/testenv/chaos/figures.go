package chaos

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Result is what a run did and found.
type Result struct {
	Replicas, Pushes, Commands int
	Elapsed                    time.Duration

	Deploys int            // deploys recorded
	States  map[string]int // by final state
	Builds  int            // CodeBuild builds started

	Kills           int // SIGKILLs
	Exits           int // replicas that ended by themselves after they listened: crashes
	StartFailures   int // replicas that ended before they listened (the store unreachable), started again
	PostgresRestart int
	Faults          []string // what else was injected, in order

	// HandOverJobs and HandOverDeploys are, for each job and deploy a replica held under lease
	// when it was killed, the time from the kill until another replica claimed it.
	HandOverJobs, HandOverDeploys []time.Duration
	NotHandedOver                 int // held work never claimed elsewhere by the end

	Deliveries, Redelivered, Duplicates int // webhooks: sent, redelivered after failing, redelivered again once taken
	GitHubCalls                         int

	DuplicateReports int // check runs, GitHub Deployments, statuses or replies beyond one
	StaleReports     int // Deployment statuses sent after a newer deploy's for the environment
	RepliesWaiting   int // command replies with no final text
	Violations       []string
}

// figures fills in what the run counted.
func (w *world) figures() *Result {
	w.mu.Lock()
	defer w.mu.Unlock()
	res := &Result{Replicas: w.o.Replicas, Pushes: w.o.Pushes, Commands: len(w.commands),
		Kills: len(w.kills), Exits: w.exits, StartFailures: w.startFailures, PostgresRestart: w.pgRestarts, Faults: slices.Clone(w.faults)}
	for _, h := range w.handOvers {
		switch {
		case h.took == 0:
			res.NotHandedOver++
		case h.kind == "job":
			res.HandOverJobs = append(res.HandOverJobs, h.took)
		default:
			res.HandOverDeploys = append(res.HandOverDeploys, h.took)
		}
	}
	for _, d := range w.gh.Deliveries() {
		if !d.Redelivery {
			res.Deliveries++
		}
	}
	w.rd.mu.Lock()
	res.Redelivered, res.Duplicates = w.rd.redelivers, w.rd.duplicates
	w.rd.mu.Unlock()
	res.GitHubCalls = len(w.gh.Requests())
	res.Builds = len(w.aws.CodeBuild.Builds())
	if w.exits > 0 {
		w.violations = append(w.violations, fmt.Sprintf("%d replicas crashed: they ended by themselves after they had listened (see the replica logs)", w.exits))
	}
	if res.NotHandedOver > 0 {
		w.violations = append(w.violations, fmt.Sprintf("%d pieces of a killed replica's work were never claimed by another", res.NotHandedOver))
	}
	return res
}

// Print writes the figures and every violation.
func (r *Result) Print(w io.Writer) {
	states := make([]string, 0, len(r.States))
	for _, s := range []string{"succeeded", "superseded", "failed", "rolled_back", "cancelled"} {
		if n := r.States[s]; n > 0 {
			states = append(states, fmt.Sprintf("%s %d", s, n))
		}
	}
	fmt.Fprintf(w, "chaos: %d replicas, %d pushes on %d targets, %d commands, in %s\n", r.Replicas, r.Pushes, len(targets), r.Commands, r.Elapsed.Round(time.Second))
	fmt.Fprintf(w, "  deploys                %d (%s); %d CodeBuild builds\n", r.Deploys, strings.Join(states, ", "), r.Builds)
	fmt.Fprintf(w, "  kills                  %d SIGKILLs; %d replicas crashed; %d starts failed (store unreachable) and were retried\n", r.Kills, r.Exits, r.StartFailures)
	fmt.Fprintf(w, "  PostgreSQL restarts    %d\n", r.PostgresRestart)
	fmt.Fprintf(w, "  hand-over, jobs        %s\n", percentiles(r.HandOverJobs))
	fmt.Fprintf(w, "  hand-over, deploys     %s\n", percentiles(r.HandOverDeploys))
	fmt.Fprintf(w, "  never handed over      %d\n", r.NotHandedOver)
	fmt.Fprintf(w, "  webhooks               %d delivered, %d redelivered after failing, %d duplicates redelivered\n", r.Deliveries, r.Redelivered, r.Duplicates)
	fmt.Fprintf(w, "  GitHub calls           %d\n", r.GitHubCalls)
	for _, f := range r.Faults {
		fmt.Fprintf(w, "  fault                  %s\n", f)
	}
	fmt.Fprintf(w, "  duplicate reports      %d\n", r.DuplicateReports)
	fmt.Fprintf(w, "  stale reports          %d\n", r.StaleReports)
	fmt.Fprintf(w, "  replies left waiting   %d of %d\n", r.RepliesWaiting, r.Commands)
	fmt.Fprintf(w, "  invariant violations   %d\n", len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintf(w, "    - %s\n", v)
	}
}

// percentiles is "p50 X, p99 Y, max Z (n=N)" or "none measured".
func percentiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none measured (no leased work was held by a killed replica, or its lease owners do not name their process)"
	}
	s := slices.Sorted(slices.Values(ds))
	at := func(p float64) time.Duration {
		return s[min(len(s)-1, int(p*float64(len(s))))].Round(10 * time.Millisecond)
	}
	return fmt.Sprintf("p50 %s, p99 %s, max %s (n=%d)", at(0.5), at(0.99), s[len(s)-1].Round(10*time.Millisecond), len(s))
}
