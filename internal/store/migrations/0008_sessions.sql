-- Sign-in sessions, shared by every replica. The cookie carries a random session id; only its
-- SHA-256 is kept here, so reading this table gives no cookie that works. The person's GitHub
-- token is sealed (AES-GCM, with a key derived from the App's client secret), never stored in
-- the clear.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL,
    login      TEXT NOT NULL,
    token      {{BLOB}} NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
