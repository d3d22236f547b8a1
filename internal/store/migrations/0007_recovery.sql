-- Recovery of missed work (internal/recovery). One row holds the lease that lets one replica at a
-- time run a recovery pass, on the database's clock (unix microseconds), when the next pass is
-- due, and the checkpoint: GitHub's delivered_at of the newest delivery the last pass examined.
CREATE TABLE recovery (
    name          TEXT PRIMARY KEY,
    lease_owner   TEXT NOT NULL DEFAULT '',
    lease_token   BIGINT NOT NULL DEFAULT 0,
    lease_expires BIGINT NOT NULL DEFAULT 0,
    checkpoint    BIGINT NOT NULL DEFAULT 0,
    last_pass     BIGINT NOT NULL DEFAULT 0,
    next_pass     BIGINT NOT NULL DEFAULT 0
);

-- Failed webhook deliveries recovery acted on, by guid (X-GitHub-Delivery): redelivered and
-- waiting for the attempt's outcome, recovered, or left alone and why. A delivery is redelivered
-- a bounded number of times, and never again once recovered.
CREATE TABLE recovery_deliveries (
    guid       TEXT PRIMARY KEY,
    attempt_id BIGINT NOT NULL DEFAULT 0,
    event      TEXT NOT NULL,
    action     TEXT NOT NULL DEFAULT '',
    repo       TEXT NOT NULL DEFAULT '',
    ref        TEXT NOT NULL DEFAULT '',
    state      TEXT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    reason     TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX recovery_deliveries_state ON recovery_deliveries (state, updated_at);

-- The refs recovery reconciles, as the last pass saw them: each trigger branch's head and each
-- release tag of a repository (the row with ref '' marks a repository whose refs were read).
CREATE TABLE recovery_refs (
    repo        TEXT NOT NULL,
    ref         TEXT NOT NULL,
    sha         TEXT NOT NULL DEFAULT '',
    observed_at BIGINT NOT NULL,
    PRIMARY KEY (repo, ref)
);
