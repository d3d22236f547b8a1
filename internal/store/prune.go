package store

import (
	"context"
	"fmt"
	"time"
)

// Retention says how long the store keeps what only history needs. Zero keeps it forever.
// Deploys are always kept: they are the record of what ran where.
type Retention struct {
	// Deliveries are the ids that make a redelivered webhook a duplicate. GitHub redelivers
	// for a few days only, so a month is plenty; shorter than that would let a late
	// redelivery do its work again.
	Deliveries time.Duration
	// Jobs are finished jobs, done or failed for good.
	Jobs time.Duration
	// Commands are the audit trail of commands and their outcomes.
	Commands time.Duration
}

// Pruned counts the rows Prune deleted. Bookkeeping counts what goes with them: the records of
// GitHub creates (kept as long as finished jobs: only a job that may still retry needs one), the
// branch moves matched to pushes and the deliveries recovery asked to be redelivered (kept as long
// as deliveries: GitHub redelivers for three days).
type Pruned struct {
	Deliveries, Jobs, Commands, Bookkeeping int64
}

// pruneBatch bounds one delete, so pruning a long history never holds the writer (on SQLite,
// the intake's one connection) for more than a moment at a time.
const pruneBatch = 1000

// pruneQueries delete one batch older than $1 each. The order makes them walk the indexes of
// migration 0006 from the oldest row and stop at the first one kept, so a run that finds
// nothing to delete reads nothing, however long the history; the outer condition on age keeps
// the delete itself to the old rows too (PostgreSQL may join rather than look each id up).
var pruneQueries = [3]string{
	`DELETE FROM deliveries WHERE received_at < $1 AND id IN (
		SELECT id FROM deliveries WHERE received_at < $1 ORDER BY received_at LIMIT 1000)`,
	`DELETE FROM jobs WHERE state IN ('done', 'failed') AND updated_at < $1 AND id IN (
		SELECT id FROM jobs WHERE state IN ('done', 'failed') AND updated_at < $1 ORDER BY updated_at LIMIT 1000)`,
	`DELETE FROM commands WHERE created_at < $1 AND id IN (
		SELECT id FROM commands WHERE created_at < $1 ORDER BY created_at LIMIT 1000)`,
}

// bookkeepingQueries delete one batch of bookkeeping older than $1 each, walking the indexes of
// migration 0014 the same way; the first goes with finished jobs, the others with deliveries.
var bookkeepingQueries = [3]string{
	`DELETE FROM github_writes WHERE updated_at < $1 AND write_key IN (
		SELECT write_key FROM github_writes WHERE updated_at < $1 ORDER BY updated_at LIMIT 1000)`,
	`DELETE FROM branch_moves WHERE created_at < $1 AND id IN (
		SELECT id FROM branch_moves WHERE created_at < $1 ORDER BY created_at LIMIT 1000)`,
	`DELETE FROM recovery_deliveries WHERE updated_at < $1 AND guid IN (
		SELECT guid FROM recovery_deliveries WHERE updated_at < $1 ORDER BY updated_at LIMIT 1000)`,
}

// Prune deletes what r no longer keeps, a batch at a time, and counts it. It may run on every
// replica at once: a row is deleted once, and the others find nothing.
func (s *Store) Prune(ctx context.Context, r Retention) (Pruned, error) {
	var p Pruned
	now := s.Now()
	for i, keep := range []time.Duration{r.Deliveries, r.Jobs, r.Commands} {
		if keep <= 0 {
			continue
		}
		n, err := s.pruneOne(ctx, pruneQueries[i], micros(now.Add(-keep)))
		switch i {
		case 0:
			p.Deliveries = n
		case 1:
			p.Jobs = n
		case 2:
			p.Commands = n
		}
		if err != nil {
			return p, err
		}
	}
	for i, keep := range []time.Duration{r.Jobs, r.Deliveries, r.Deliveries} {
		if keep <= 0 {
			continue
		}
		n, err := s.pruneOne(ctx, bookkeepingQueries[i], micros(now.Add(-keep)))
		p.Bookkeeping += n
		if err != nil {
			return p, err
		}
	}
	return p, nil
}

func (s *Store) pruneOne(ctx context.Context, q string, before int64) (int64, error) {
	var total int64
	for {
		res, err := s.write.ExecContext(ctx, q, before)
		if err != nil {
			return total, fmt.Errorf("store: pruning: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("store: pruning: %w", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}
