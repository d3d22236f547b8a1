package store

import (
	"context"
	"fmt"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

// Span is a stretch of time a commit ran on a stage: from the end of a successful deploy of it
// until the end of the next successful deploy of another commit. Until is zero while it still
// runs there.
type Span struct {
	From, Until time.Time
}

// LiveSpans returns the stretches of time sha ran on app's stage, oldest first, as the stage's
// successful deploys say (what runs on a stage is its newest successful deploy): none when it
// never succeeded there. A commit deployed again while it ran continues its stretch.
func (s *Store) LiveSpans(ctx context.Context, app, stage, sha string) ([]Span, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT sha, finished_at FROM deploys
		WHERE app = $1 AND stage = $2 AND state = 'succeeded'
			AND id >= (SELECT MIN(id) FROM deploys WHERE app = $1 AND stage = $2 AND sha = $3 AND state = 'succeeded')
		ORDER BY id`, app, stage, sha)
	if err != nil {
		return nil, fmt.Errorf("store: reading when %s ran on %s of %s: %w", deploy.ShortSHA(sha), stage, app, err)
	}
	defer rows.Close()
	var out []Span
	running := false
	for rows.Next() {
		var got string
		var finished int64
		if err := rows.Scan(&got, &finished); err != nil {
			return nil, fmt.Errorf("store: reading when %s ran on %s of %s: %w", deploy.ShortSHA(sha), stage, app, err)
		}
		switch {
		case got == sha && !running:
			out, running = append(out, Span{From: fromMicros(finished)}), true
		case got != sha && running:
			out[len(out)-1].Until, running = fromMicros(finished), false
		}
	}
	return out, rows.Err()
}
