package store

import (
	"context"
	"fmt"
)

// ActiveDeployment is a deploy whose GitHub Deployment was last sent success: GitHub shows it
// as active in its environment until it is sent inactive.
type ActiveDeployment struct {
	DeployID           int64
	Repo               string // owner/name the Deployment is in
	GitHubDeploymentID int64
}

// ActiveBefore lists the deploys of app to stage older than id whose GitHub Deployment is still
// active (its last status sent was success), newest first, at most limit of them. A successful
// deploy marks them inactive; normally there is one, the deploy it replaced.
func (s *Store) ActiveBefore(ctx context.Context, app, stage string, id int64, limit int) ([]ActiveDeployment, error) {
	rows, err := s.read.QueryContext(ctx, activeBeforeQuery, app, stage, id, limit)
	if err != nil {
		return nil, fmt.Errorf("store: listing active GitHub Deployments of %s on %s: %w", app, stage, err)
	}
	defer rows.Close()
	var out []ActiveDeployment
	for rows.Next() {
		var a ActiveDeployment
		if err := rows.Scan(&a.DeployID, &a.Repo, &a.GitHubDeploymentID); err != nil {
			return nil, fmt.Errorf("store: listing active GitHub Deployments of %s on %s: %w", app, stage, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// activeBeforeQuery walks deploys_github_success: the few active deploys of an app and stage,
// never its history.
const activeBeforeQuery = `SELECT id, repo, github_deployment_id FROM deploys
	WHERE app = $1 AND stage = $2 AND id < $3 AND github_deployment_status = 'success' AND github_deployment_id <> 0
	ORDER BY id DESC LIMIT $4`
