-- Deliveries GitHub made to us that implied work; the id is X-GitHub-Delivery, so a redelivery
-- finds its row and records nothing new.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    event           TEXT NOT NULL,
    action          TEXT NOT NULL DEFAULT '',
    repo            TEXT NOT NULL DEFAULT '',
    installation_id BIGINT NOT NULL DEFAULT 0,
    received_at     BIGINT NOT NULL
);

-- Deploys: one row per (app, stage, sha) request, advanced through its states by the pipeline.
-- Times are unix microseconds written by the application, so both databases compare them alike.
CREATE TABLE deploys (
    id               {{ID}},
    dedup_key        TEXT NOT NULL UNIQUE,
    app              TEXT NOT NULL,
    stage            TEXT NOT NULL,
    repo             TEXT NOT NULL,
    sha              TEXT NOT NULL,
    ref              TEXT NOT NULL DEFAULT '',
    installation_id  BIGINT NOT NULL DEFAULT 0,
    trigger_event    TEXT NOT NULL,
    trigger_delivery TEXT NOT NULL,
    trigger_pr       BIGINT NOT NULL DEFAULT 0,
    trigger_actor    TEXT NOT NULL DEFAULT '',
    state            TEXT NOT NULL,
    superseded_by    BIGINT NOT NULL DEFAULT 0,
    check_run_id     BIGINT NOT NULL DEFAULT 0,
    error            TEXT NOT NULL DEFAULT '',
    checkpoint       {{BLOB}},
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    started_at       BIGINT NOT NULL DEFAULT 0,
    finished_at      BIGINT NOT NULL DEFAULT 0,
    run_after        BIGINT NOT NULL DEFAULT 0,
    lease_owner      TEXT NOT NULL DEFAULT '',
    lease_token      BIGINT NOT NULL DEFAULT 0,
    lease_expires    BIGINT NOT NULL DEFAULT 0
);
-- The invariants the rest of the system relies on, enforced where no race can break them:
-- per app and stage at most one queued and at most one running deploy.
CREATE UNIQUE INDEX deploys_one_queued ON deploys (app, stage) WHERE state = 'queued';
CREATE UNIQUE INDEX deploys_one_running ON deploys (app, stage) WHERE state IN ('preflight', 'building', 'rolling_out');
CREATE INDEX deploys_due ON deploys (run_after, id) WHERE state IN ('queued', 'preflight', 'building', 'rolling_out');
CREATE INDEX deploys_app_stage ON deploys (app, stage, id);

-- Jobs: durable background work other than deploys (reports to GitHub, recorded events).
CREATE TABLE jobs (
    id            {{ID}},
    kind          TEXT NOT NULL,
    job_key       TEXT NOT NULL UNIQUE,
    payload       TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'pending',
    attempts      BIGINT NOT NULL DEFAULT 0,
    last_error    TEXT NOT NULL DEFAULT '',
    run_after     BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    lease_owner   TEXT NOT NULL DEFAULT '',
    lease_token   BIGINT NOT NULL DEFAULT 0,
    lease_expires BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX jobs_due ON jobs (kind, run_after, id) WHERE state = 'pending';
