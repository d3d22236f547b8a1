-- What reporting made on GitHub for a deploy, so a retried report edits instead of duplicating.
ALTER TABLE deploys ADD COLUMN github_deployment_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deploys ADD COLUMN github_deployment_status TEXT NOT NULL DEFAULT '';
ALTER TABLE deploys ADD COLUMN pr_comment_id BIGINT NOT NULL DEFAULT 0;
