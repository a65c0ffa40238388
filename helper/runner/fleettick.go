package runner

import (
	"time"

	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/reason"
)

// FleetConfig is a tick's part in fleet coordination (package fleet).
type FleetConfig struct {
	DSNFile   string        // the tick role's DSN (never on a command line)
	Timeout   time.Duration // connecting and each query
	LockScope bool          // the lock group is held fleet-wide too
	Host      string        // this host's name, for holders and messages
	// Singleton makes the job a floating singleton: each slot of the
	// schedule (Config.Schedule) runs on one host of the fleet.
	Singleton bool
}

// WatchInterval is how often a held fleet lock is confirmed while the
// command runs; with the query timeout, a loss is noticed within ~5 s.
var WatchInterval = 2 * time.Second

// slotOf names the slot this tick serves: the schedule's next elapse, asked
// of systemd as the tick starts. Every host whose timer fired for the same
// scheduled time gets the same answer from its own clock, whatever its skew
// or random delay (the deploy checks that the delay is well inside the
// shortest interval).
func (r *runner) slotOf() (Outcome, bool, error) {
	r.ensureDue()
	if r.nextErr != nil {
		out, err := r.skip(exitcode.GateBad, reason.F(reason.FleetSlotUnavailable, "%v (a floating singleton never runs without its slot)", r.nextErr))
		return out, true, err
	}
	r.slot = *r.nextDue
	return Outcome{}, false, nil
}

// fleetUnusable applies the job's policy to a fleet database it cannot use:
// --gate-fail closed (or a fleet-scoped lock group) does not run (78).
func (r *runner) fleetUnusable(err error) (Outcome, bool, error) {
	r.closeFleet()
	if r.c.Fleet.Singleton {
		out, err := r.skip(exitcode.GateBad, reason.F(reason.FleetSlotUnavailable, "%v (a floating singleton never runs without its slot)", err))
		return out, true, err
	}
	if r.c.Fleet.LockScope {
		out, err := r.skip(exitcode.GateBad, reason.F(reason.FleetLockUnavailable, "%v (a fleet-scoped lock group never runs without its fleet lock)", err))
		return out, true, err
	}
	if r.c.GateFailOpen {
		r.rep.Warn("job=%s: %s; running anyway (--gate-fail open)", r.c.Job, reason.F(reason.FleetGateUnreachable, "%v", err))
		r.fleetSkipped = true
		return Outcome{}, false, nil
	}
	out, err := r.skip(exitcode.GateBad, reason.F(reason.FleetGateUnreachable, "%v", err))
	return out, true, err
}
