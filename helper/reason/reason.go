// Package reason names the prefixes of the reasons tickgate records and
// prints ("gate-closed: deploy 42"). Tests, molecule checks and users grep
// for them, so they are constants here and listed in docs/operating.md,
// "Reasons". Every prefix is kebab-case: lower-case words joined by hyphens
// (reason_test.go checks each), then ": " and the detail.
package reason

import (
	"fmt"
	"strings"
)

// Why a tick did not run its command, or how a run ended.
const (
	Done           = "done"            // the done marker is set (skipped)
	Halted         = "halted"          // the halted marker is set (skipped)
	GateClosed     = "gate-closed"     // the gate is closed (skipped)
	JobPaused      = "job-paused"      // the job is paused (skipped)
	RolloutWindow  = "rollout-window"  // an announced rollout overlaps the expected runtime (skipped)
	GateUnusable   = "gate-unusable"   // the gate file is unreadable, malformed or insecure (78, or a warning)
	LockBusy       = "lock-busy"       // the lock group is held by another run (skipped)
	DoneCode       = "done-code"       // the command exited with a done code (done marker written)
	HaltCode       = "halt-code"       // the command exited with a halt code (halted marker written)
	Timeout        = "timeout"         // the command ran past --timeout and was stopped
	MissedDeadline = "missed-deadline" // the run would start more than --start-deadline after it was due (skipped)
	Backoff        = "backoff"         // the lock group backs off (tickgate backoff) until a time (skipped)

	PreconditionFailed = "precondition-failed" // a requires: command exited non-zero or timed out (skipped)
	DependencyStale    = "dependency-stale"    // a requires: job did not succeed recently enough (skipped)
	Blackout           = "blackout"            // a recurring blackout window is open, or opens within the expected runtime (skipped)

	FleetGateUnreachable = "fleet-gate-unreachable" // the fleet database did not answer in time (78, or a warning)
	FleetLockUnavailable = "fleet-lock-unavailable" // a fleet-scoped lock group could not be asked for (78, never run)
	FleetLockLost        = "fleet-lock-lost"        // the fleet lock went while the command ran: it was stopped
	FleetSlotUnavailable = "fleet-slot-unavailable" // a floating singleton could not claim its slot (78, never run)
	SlotTaken            = "slot-taken"             // a floating singleton's slot already ran on another host (skipped)
	SlotScheduleMismatch = "slot-schedule-mismatch" // a floating singleton's schedule here is not the one the deploy registered (78, never run)
)

// All is every prefix, for tests and documentation.
var All = []string{
	Done, Halted, GateClosed, JobPaused, RolloutWindow, GateUnusable, LockBusy, DoneCode, HaltCode,
	Timeout, MissedDeadline, Backoff, PreconditionFailed, DependencyStale, Blackout, FleetGateUnreachable, FleetLockUnavailable, FleetLockLost,
	FleetSlotUnavailable, SlotTaken, SlotScheduleMismatch,
}

// Legacy maps the spellings of 0.4 and before to the prefixes that replaced
// them. Reasons recorded by an older helper (state.json, history) still
// carry them; readers that branch on a prefix use Has, which accepts both,
// for one release (0.5). Drop this map in 0.6.
var Legacy = map[string]string{
	"missed deadline":        MissedDeadline,
	"fleet gate unreachable": FleetGateUnreachable,
	"fleet lock unavailable": FleetLockUnavailable,
	"fleet lock lost":        FleetLockLost,
	"fleet slot unavailable": FleetSlotUnavailable,
}

// Has reports whether the reason s starts with prefix (followed by ":" or
// nothing), in its current spelling or, for one release, its old one.
func Has(s, prefix string) bool {
	if hasExact(s, prefix) {
		return true
	}
	for old, now := range Legacy {
		if now == prefix && hasExact(s, old) {
			return true
		}
	}
	return false
}

func hasExact(s, prefix string) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	return ok && (rest == "" || rest[0] == ':')
}

// F formats "PREFIX: detail".
func F(prefix, format string, a ...any) string {
	return prefix + ": " + fmt.Sprintf(format, a...)
}
