package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

// SlotImages is what one slot of a two-slot stage runs, as Stagecoach last set it: the images of
// the slot's Deployments and the commit they are the build of. Every record pairs images with
// their own commit, so a slot whose Deployments run exactly these images runs that commit; one
// that runs anything else runs something nobody recorded.
type SlotImages struct {
	App, Stage, Slot string
	SHA              string
	DeployID         int64 // the deploy that set them
	Images           []deploy.Image
	UpdatedAt        time.Time
}

// SlotImages returns the record of one slot, and whether there is one.
func (s *Store) SlotImages(ctx context.Context, app, stage, slot string) (SlotImages, bool, error) {
	si := SlotImages{App: app, Stage: stage, Slot: slot}
	var images string
	var updated int64
	err := s.read.QueryRowContext(ctx, `SELECT sha, deploy_id, images, updated_at FROM slot_images
		WHERE app = $1 AND stage = $2 AND slot = $3`, app, stage, slot).Scan(&si.SHA, &si.DeployID, &images, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return SlotImages{}, false, nil
	}
	if err != nil {
		return SlotImages{}, false, fmt.Errorf("store: reading what slot %s of %s/%s runs: %w", slot, app, stage, err)
	}
	if err := json.Unmarshal([]byte(images), &si.Images); err != nil {
		return SlotImages{}, false, fmt.Errorf("store: reading what slot %s of %s/%s runs: %w", slot, app, stage, err)
	}
	si.UpdatedAt = fromMicros(updated)
	return si, true, nil
}

// SetSlotImages records what a slot runs now, under the lease of the deploy that set it:
// ErrLeaseLost when that deploy changed hands or ended, so a stale worker never overwrites the
// record of a newer one.
func (s *Store) SetSlotImages(ctx context.Context, l Lease, si SlotImages) error {
	images, err := json.Marshal(si.Images)
	if err != nil {
		return fmt.Errorf("store: recording what slot %s runs: %w", si.Slot, err)
	}
	res, err := s.write.ExecContext(ctx, `INSERT INTO slot_images (app, stage, slot, sha, deploy_id, images, updated_at)
		SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS TEXT), CAST($5 AS BIGINT), CAST($6 AS TEXT), CAST($7 AS BIGINT)
		WHERE EXISTS (SELECT 1 FROM deploys WHERE id = $8 AND lease_owner = $9 AND lease_token = $10 AND state NOT IN `+finalStates+`)
		ON CONFLICT (app, stage, slot) DO UPDATE SET sha = excluded.sha, deploy_id = excluded.deploy_id,
			images = excluded.images, updated_at = excluded.updated_at`,
		si.App, si.Stage, si.Slot, si.SHA, si.DeployID, string(images), s.now(), l.ID, l.Owner, l.Token)
	return leaseResult(res, err, "recording slot "+si.Slot+" by", l)
}
