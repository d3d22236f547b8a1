-- A lock may be taken for a while (`/lock prod 2h`): it holds until expires_at (unix
-- microseconds), and 0 means until someone unlocks it. An expired lock is as if it were not
-- there: it holds nothing back, refuses no command, and anyone may lock the stage again.
ALTER TABLE locks ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
