-- The release workflow: what a deploy does (mode, image, slot), who forced it and why, where the
-- command that asked for it was given, and whether it waits to be released.
ALTER TABLE deploys ADD COLUMN mode TEXT NOT NULL DEFAULT '';
ALTER TABLE deploys ADD COLUMN image TEXT NOT NULL DEFAULT '';
ALTER TABLE deploys ADD COLUMN slot TEXT NOT NULL DEFAULT '';
ALTER TABLE deploys ADD COLUMN force_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE deploys ADD COLUMN trigger_issue BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deploys ADD COLUMN trigger_comment BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deploys ADD COLUMN held BIGINT NOT NULL DEFAULT 0;
CREATE INDEX deploys_delivery ON deploys (trigger_delivery);

-- Locks hold a stage of an app: automatic deploys queue (newest wins) and commands are refused,
-- except the lock owner's. One lock per app and stage.
CREATE TABLE locks (
    app        TEXT NOT NULL,
    stage      TEXT NOT NULL,
    repo       TEXT NOT NULL,
    owner      TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    issue      BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (app, stage)
);

-- Releases: one per tag of a repository, with the issue and check run that offer its promotion.
CREATE TABLE releases (
    id              {{ID}},
    repo            TEXT NOT NULL,
    tag             TEXT NOT NULL,
    sha             TEXT NOT NULL,
    installation_id BIGINT NOT NULL DEFAULT 0,
    tagged_by       TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    issue_number    BIGINT NOT NULL DEFAULT 0,
    check_run_id    BIGINT NOT NULL DEFAULT 0,
    promoted_by     TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    shipped_at      BIGINT NOT NULL DEFAULT 0,
    opened_by       TEXT NOT NULL DEFAULT '',
    UNIQUE (repo, tag)
);
CREATE INDEX releases_issue ON releases (repo, issue_number);

-- Commands people gave (comments and check-run buttons) and what became of them: the audit trail
-- of who asked for what, who was refused and why, and which forced deploys skipped the order.
CREATE TABLE commands (
    id               {{ID}},
    command_key      TEXT NOT NULL UNIQUE,
    repo             TEXT NOT NULL,
    issue            BIGINT NOT NULL DEFAULT 0,
    actor            TEXT NOT NULL,
    verb             TEXT NOT NULL,
    stage            TEXT NOT NULL DEFAULT '',
    args             TEXT NOT NULL DEFAULT '',
    force_reason     TEXT NOT NULL DEFAULT '',
    outcome          TEXT NOT NULL DEFAULT '',
    reason           TEXT NOT NULL DEFAULT '',
    reply_comment_id BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX commands_repo ON commands (repo, id);
