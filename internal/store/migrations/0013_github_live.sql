-- The deploys whose GitHub Deployment was last sent success: what GitHub shows as active in
-- their environment. Reporting marks the older ones inactive itself when a newer deploy of the
-- app succeeds there (GitHub's auto_inactive skips production environments and would take other
-- apps' deployments of the same environment along), and asks for them by app, stage and id.
CREATE INDEX deploys_github_success ON deploys (app, stage, id) WHERE github_deployment_status = 'success';

-- Until now GitHub's auto_inactive marked them (outside production) and the store never heard:
-- keep only the newest success of each app and stage, so the first success after the upgrade
-- marks one previous Deployment inactive, not every one ever made.
UPDATE deploys SET github_deployment_status = 'inactive'
WHERE github_deployment_status = 'success'
  AND id < (SELECT MAX(newer.id) FROM deploys newer
            WHERE newer.app = deploys.app AND newer.stage = deploys.stage AND newer.github_deployment_status = 'success');
