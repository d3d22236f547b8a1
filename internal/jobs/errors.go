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

// UnavailableError marks a failure because a service the job needs did not answer (a 5xx, a
// dropped connection, a timeout). The runner retries it without counting it against the job,
// and wakes it at once when the service answers again.
type UnavailableError struct {
	Service string
	Err     error
}

func (e *UnavailableError) Error() string { return e.Err.Error() }

func (e *UnavailableError) Unwrap() error { return e.Err }

// Unavailable wraps err as service being unavailable; nil stays nil.
func Unavailable(service string, err error) error {
	if err == nil {
		return nil
	}
	return &UnavailableError{Service: service, Err: err}
}
