package report

import (
	"context"
	"fmt"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/ghcreate"
	"github.com/stagecoach/stagecoach/internal/markdown"
)

// statusRequest is the Deployment status of v's deploy in state. It carries:
//   - log_url: the deploy's check run, its details on GitHub (steps, durations, the CodeBuild
//     log, buttons), which everyone who can read the repository can open;
//   - environment_url: where people open the app on the stage (apps[].stages.<stage>.
//     environment_url), GitHub's "View deployment" link, except on an inactive status;
//   - auto_inactive: false. GitHub's own retires every earlier success of the environment, other
//     apps' deployments to the same stage included, and skips production environments; retire
//     marks exactly this app's previous ones inactive instead, on every stage alike.
func (p *Progress) statusRequest(v view, state string) *github.DeploymentStatusRequest {
	d := v.D
	req := &github.DeploymentStatusRequest{State: github.Ptr(state), Description: github.Ptr(v.statusDescription()),
		Environment: github.Ptr(d.Stage), AutoInactive: github.Ptr(false)}
	if u := p.checkRunURL(d); u != "" {
		req.LogURL = github.Ptr(u)
	} else if v.CP.BuildLog != "" {
		req.LogURL = github.Ptr(v.CP.BuildLog)
	}
	if u := p.environmentURL(d); u != "" && state != "inactive" {
		req.EnvironmentURL = github.Ptr(u)
	}
	return req
}

// checkRunURL is the web address of d's check run ("" before it exists).
func (p *Progress) checkRunURL(d deploy.Deploy) string {
	if d.CheckRunID == 0 || p.webURL == "" {
		return ""
	}
	return fmt.Sprintf("%s/%s/runs/%d", p.webURL, d.Repo, d.CheckRunID)
}

// environmentURL is the configured address of d's app on its stage, or "".
func (p *Progress) environmentURL(d deploy.Deploy) string {
	app := p.cfg.App(d.App)
	if app == nil {
		return ""
	}
	return app.Stages[d.Stage].EnvironmentURL
}

// retirePage bounds one look for active Deployments; retire looks again until none is left.
// Normally there is one: the deploy d replaced.
const retirePage = 20

// retire marks inactive the GitHub Deployments of d's app and stage older than d that were last
// sent success, once d's success has been sent and recorded. It runs in d's report lane, so no
// report of the environment runs beside it, and each inactive status is made once (ghcreate)
// and recorded: a retried job finds what an attempt that died already sent, and a deploy once
// recorded inactive never gets another status (Progress.deployment).
func (p *Progress) retire(ctx context.Context, gh *github.Client, d deploy.Deploy) error {
	for {
		old, err := p.st.ActiveBefore(ctx, d.App, d.Stage, d.ID, retirePage)
		if err != nil {
			return err
		}
		if len(old) == 0 {
			return nil
		}
		for _, a := range old {
			owner, repo, err := splitRepo(a.Repo) // the Deployment's own repository
			if err != nil {
				return err
			}
			req := &github.DeploymentStatusRequest{State: github.Ptr("inactive"), Environment: github.Ptr(d.Stage), AutoInactive: github.Ptr(false),
				Description: github.Ptr(markdown.Clip(fmt.Sprintf("Replaced by deploy #%d (%s)", d.ID, deploy.ShortSHA(d.SHA)), 140))}
			if u := p.checkRunURL(d); u != "" {
				req.LogURL = github.Ptr(u) // where the replacement stands
			}
			if _, _, err := ghcreate.Once(ctx, p.st, fmt.Sprintf("deployment-status/deploy/%d/inactive", a.DeployID),
				func(ctx context.Context) (int64, error) {
					return ghcreate.DeploymentStatus(ctx, gh, owner, repo, a.GitHubDeploymentID, "inactive")
				},
				func(ctx context.Context) (int64, error) {
					s, _, err := gh.Repositories.CreateDeploymentStatus(ctx, owner, repo, a.GitHubDeploymentID, req)
					return s.GetID(), err
				}); err != nil {
				return fmt.Errorf("marking deploy %d's GitHub Deployment inactive after deploy %d: %w", a.DeployID, d.ID, err)
			}
			if err := p.st.SetGitHubDeployment(ctx, a.DeployID, a.GitHubDeploymentID, "inactive"); err != nil {
				return err
			}
		}
	}
}
