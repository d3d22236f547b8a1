-- Repositories' own configuration files (.github/stagecoach.yml, package repoconfig), one row per
-- repository: the version in force (the last good file, its commit and blob) and what the last
-- read of the file found (its ETag for the next conditional read, its blob and commit, and its
-- problems when it was refused). Every replica applies the version in force; version grows with
-- every new one, so a replica sees a newer one by comparing numbers.
CREATE TABLE repo_configs (
    repo       TEXT PRIMARY KEY,
    version    BIGINT NOT NULL DEFAULT 0,
    sha        TEXT NOT NULL DEFAULT '',
    blob_sha   TEXT NOT NULL DEFAULT '',
    content    TEXT NOT NULL DEFAULT '',
    etag       TEXT NOT NULL DEFAULT '',
    read_blob  TEXT NOT NULL DEFAULT '',
    read_sha   TEXT NOT NULL DEFAULT '',
    problems   TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL
);
