-- Branch moves Stagecoach makes: a promotion records its deploys held, records the move, then
-- moves the stage's branch. The push GitHub then delivers for the branch is matched to the move
-- (once), so Stagecoach's own move deploys nothing twice, and no one else's push passes for it.
CREATE TABLE branch_moves (
    id            {{ID}},
    repo          TEXT NOT NULL,
    branch        TEXT NOT NULL,
    sha           TEXT NOT NULL,
    command_key   TEXT NOT NULL,
    deploy_ids    TEXT NOT NULL DEFAULT '',
    push_delivery TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    UNIQUE (repo, branch, sha, command_key)
);
CREATE INDEX branch_moves_ref ON branch_moves (repo, branch, sha);
-- Releases by tag are read when `/promote prod <tag>` names one; refusals by outcome for the
-- dashboard.
CREATE INDEX commands_outcome ON commands (repo, outcome, id);
