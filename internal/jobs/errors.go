package jobs

import (
	"errors"
	"time"
)

// TerminalError marks a failure that retrying cannot fix (a 404 from GitHub, a malformed
// payload). The runner fails such a job at once instead of retrying it.
type TerminalError struct{ Err error }

func (e *TerminalError) Error() string { return e.Err.Error() }

func (e *TerminalError) Unwrap() error { return e.Err }

// Terminal wraps err as terminal; nil stays nil.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return &TerminalError{Err: err}
}

// IsTerminal reports whether err, or an error it wraps, is terminal.
func IsTerminal(err error) bool {
	var t *TerminalError
	return errors.As(err, &t)
}

// RetryAfterError asks for the next attempt no sooner than After (a rate limit's reset time).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }

func (e *RetryAfterError) Unwrap() error { return e.Err }
