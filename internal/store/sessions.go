package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Session is one person signed in. IDHash is the hex SHA-256 of the id their cookie carries;
// Token is their GitHub token, sealed by the sign-in package (the store never sees it in the
// clear).
type Session struct {
	IDHash    string
	UserID    int64
	Login     string
	Token     []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateSession records a new session.
func (s *Store) CreateSession(ctx context.Context, x Session) error {
	if _, err := s.write.ExecContext(ctx, `INSERT INTO sessions (id_hash, user_id, login, token, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, x.IDHash, x.UserID, x.Login, x.Token, x.CreatedAt.UnixMicro(), x.ExpiresAt.UnixMicro()); err != nil {
		return fmt.Errorf("store: recording a session: %w", err)
	}
	return nil
}

// Session returns the session whose id hashes to idHash, or ErrNotFound. An expired session is
// returned too: the caller decides (and deletes it).
func (s *Store) Session(ctx context.Context, idHash string) (Session, error) {
	x := Session{IDHash: idHash}
	var created, expires int64
	err := s.read.QueryRowContext(ctx, `SELECT user_id, login, token, created_at, expires_at FROM sessions WHERE id_hash = $1`, idHash).
		Scan(&x.UserID, &x.Login, &x.Token, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("store: reading a session: %w", err)
	}
	x.CreatedAt, x.ExpiresAt = fromMicros(created), fromMicros(expires)
	return x, nil
}

// DeleteSession ends a session; ending one that is gone already is not an error.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := s.write.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = $1`, idHash); err != nil {
		return fmt.Errorf("store: ending a session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes the sessions that expired before now and says how many.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < $1`, now.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("store: removing expired sessions: %w", err)
	}
	return res.RowsAffected()
}
