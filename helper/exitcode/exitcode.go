// Package exitcode defines tickgate's documented exit codes and the error type
// that carries one up to main, which is the only place that exits.
package exitcode

import (
	"errors"
	"fmt"
)

// The documented exit codes (docs/writing-jobs.md, "tickgate run": the exit code table).
const (
	OK       = 0  // ran; child's code was ok or done / command succeeded
	Failure  = 1  // operator command failed (e.g. drain timed out)
	Usage    = 64 // EX_USAGE: bad flags, arguments or input
	Software = 70 // EX_SOFTWARE: internal error (state dir unwritable, ...)
	Skipped  = 75 // EX_TEMPFAIL: skipped on purpose (marker, gate, rollout, lock busy)
	GateBad  = 78 // EX_CONFIG: gate file unusable under --gate-fail closed
)

// Reserved are the codes tickgate itself exits with for its own reasons: a
// job's contract (ok, done, halt codes) must not use them.
var Reserved = map[int]string{Usage: "64: usage error", Software: "70: could not record", Skipped: "75: skipped", GateBad: "78: gate unusable"}

// Error carries an exit code. Silent errors have already been reported to the
// user (e.g. a skip line) and main prints nothing more for them.
type Error struct {
	Code   int
	Err    error
	Silent bool
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error that exits with code and prints msg.
func New(code int, format string, a ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, a...)}
}

// Silent returns an error that exits with code and prints nothing.
func Silent(code int) error { return &Error{Code: code, Silent: true} }

// UsageError is shorthand for a code-64 error.
func UsageError(format string, a ...any) error { return New(Usage, format, a...) }

// From maps any error to an exit code and whether main should print it.
func From(err error) (code int, print bool) {
	if err == nil {
		return OK, false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code, !e.Silent
	}
	return Software, true
}
