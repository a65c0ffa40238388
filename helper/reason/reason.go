// Package reason names the prefixes of the reasons tickgate records and
// prints ("gate-closed: deploy 42"). Tests, molecule checks and users grep
// for them, so they are constants here and listed in docs/operating.md, "Reasons".
package reason

import "fmt"

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
	MissedDeadline = "missed deadline" // the run would start more than --start-deadline after it was due (skipped)
	Backoff        = "backoff"         // the lock group backs off (tickgate backoff) until a time (skipped)

	FleetGateUnreachable = "fleet gate unreachable" // the fleet database did not answer in time (78, or a warning)
	FleetLockUnavailable = "fleet lock unavailable" // a fleet-scoped lock group could not be asked for (78, never run)
	FleetLockLost        = "fleet lock lost"        // the fleet lock went while the command ran: it was stopped
	FleetSlotUnavailable = "fleet slot unavailable" // a floating singleton could not claim its slot (78, never run)
	SlotTaken            = "slot-taken"             // a floating singleton's slot already ran on another host (skipped)
	SlotScheduleMismatch = "slot-schedule-mismatch" // a floating singleton's schedule here is not the one the deploy registered (78, never run)
)

// F formats "PREFIX: detail".
func F(prefix, format string, a ...any) string {
	return prefix + ": " + fmt.Sprintf(format, a...)
}
