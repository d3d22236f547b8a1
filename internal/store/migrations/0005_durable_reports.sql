-- Lanes: jobs of one lane run one at a time, in the order they were recorded. A job recorded
-- while its lane is busy waits ('waiting', never claimed) until the jobs before it are done. A
-- deploy's reports share its environment's lane: one replica at a time, in order.
ALTER TABLE jobs ADD COLUMN lane TEXT NOT NULL DEFAULT '';
-- The service ('github') a retried job waits for: woken at once when it answers again.
ALTER TABLE jobs ADD COLUMN blocked_on TEXT NOT NULL DEFAULT '';
CREATE INDEX jobs_lane ON jobs (lane, id) WHERE state IN ('waiting', 'pending', 'running');
CREATE INDEX jobs_blocked ON jobs (blocked_on) WHERE state = 'pending';

-- A deploy's report sequence, bumped with every change worth reporting in the transaction that
-- records the change and its report job.
ALTER TABLE deploys ADD COLUMN report_seq BIGINT NOT NULL DEFAULT 0;

-- Objects Stagecoach creates on GitHub (check runs, Deployments and their statuses, comments,
-- release issues), recorded before the call that creates one: a retry after a crash between
-- GitHub's answer and the commit finds the key and looks the object up instead of making a
-- second. object_id is the object once known.
CREATE TABLE github_writes (
    write_key  TEXT PRIMARY KEY,
    object_id  BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
