package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/fleet"
	"github.com/tickgate/tickgate/helper/reason"
	"github.com/tickgate/tickgate/helper/state"
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

// fleetAdmit applies the fleet gate, connecting first if need be. A skip is
// recorded and returned with stop=true.
func (r *runner) fleetAdmit() (Outcome, bool, error) {
	if r.fleet == nil {
		if r.fleetSkipped {
			return Outcome{}, false, nil // unusable under --gate-fail open: host rules only
		}
		if err := r.connectFleet(); err != nil {
			return r.fleetUnusable(err)
		}
	}
	g, err := r.fleet.Gate(context.Background())
	if err != nil {
		return r.fleetUnusable(err)
	}
	if d := g.Evaluate(r.c.Job, time.Now(), r.c.ExpectedRuntime); !d.Allowed {
		// "gate-closed: fleet: deploy 42": the same prefixes, saying which gate.
		prefix, detail, _ := strings.Cut(d.Reason, ": ")
		out, err := r.skip(exitcode.Skipped, reason.F(prefix, "fleet: %s", detail))
		return out, true, err
	}
	return Outcome{}, false, nil
}

// connectFleet opens this tick's connection to the fleet database, named
// "tickgate HOST JOB" (operators find it in pg_stat_activity by that).
func (r *runner) connectFleet() error {
	fc := r.c.Fleet
	dsn, err := fleet.ReadDSN(fc.DSNFile, r.c.Owners)
	if err != nil {
		return err
	}
	r.fleet, err = fleet.Connect(context.Background(), fleet.Options{DSN: dsn, Timeout: fc.Timeout,
		AppName: fmt.Sprintf("tickgate %s %s", fc.Host, r.c.Job)})
	return err
}

// slotOf names the slot this tick serves: the schedule's next elapse, asked
// of systemd as the tick starts. Every host whose timer fired for the same
// scheduled time gets the same answer from its own clock, whatever its skew
// or random delay (the deploy checks that the delay is well inside the
// shortest interval).
func (r *runner) slotOf() (Outcome, bool, error) {
	if r.nextErr != nil {
		out, err := r.skip(exitcode.GateBad, reason.F(reason.FleetSlotUnavailable, "%v (a floating singleton never runs without its slot)", r.nextErr))
		return out, true, err
	}
	r.slot = *r.nextDue
	return Outcome{}, false, nil
}

// claimSlot claims the tick's slot fleet-wide, as the last step before the
// command starts: the slot already ran elsewhere → skip; no answer → 78.
func (r *runner) claimSlot() (Outcome, bool, error) {
	s, err := r.fleet.ClaimSlot(context.Background(), r.c.Job, r.slot, r.c.Fleet.Host)
	switch {
	case err == nil:
		r.claimed = true
		return Outcome{}, false, nil
	case errors.Is(err, fleet.ErrSlotTaken):
		what := "the slot ending " + r.slot.Format(time.RFC3339)
		if s.Slot.After(r.slot) {
			what = "a later slot (ending " + s.Slot.UTC().Format(time.RFC3339) + ")"
		}
		out, err := r.skip(exitcode.Skipped, reason.F(reason.SlotTaken, "%s ran on %s (claimed %s)",
			what, s.Host, s.ClaimedAt.UTC().Format(time.RFC3339)))
		return out, true, err
	default:
		out, err := r.skip(exitcode.GateBad, reason.F(reason.FleetSlotUnavailable, "%v (a floating singleton never runs without its slot)", err))
		return out, true, err
	}
}

// fleetUnusable applies the job's policy to a fleet database it cannot use:
// --gate-fail closed (or a fleet-scoped lock group) does not run (78).
func (r *runner) fleetUnusable(err error) (Outcome, bool, error) {
	if r.fleet != nil {
		r.fleet.Close()
		r.fleet = nil
	}
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

// fleetLock takes the lock group fleet-wide, retrying up to --lock-wait; a
// signal during the wait ends it and is returned.
func (r *runner) fleetLock() (*fleet.Held, os.Signal, error) {
	deadline := time.Now().Add(r.c.LockWait)
	holder := fleet.Holder{Host: r.c.Fleet.Host, Job: r.c.Job, PID: os.Getpid()}
	for {
		h, err := r.fleet.TryLock(context.Background(), r.c.Lock, holder)
		if err == nil || !errors.Is(err, fleet.ErrBusy) || !time.Now().Before(deadline) {
			return h, nil, err
		}
		select {
		case s := <-r.sigCh:
			return nil, s, nil
		case <-time.After(min(200*time.Millisecond, time.Until(deadline))):
		}
	}
}

// published is what a tick publishes for fleet status: its state record and
// its markers.
type published struct {
	*state.State
	Running bool `json:"running"`
	Done    bool `json:"done"`
	Halted  bool `json:"halted"`
}

// publish sends the job's record to the fleet database (connecting if this
// tick has not yet, e.g. a skip by the host gate). It only warns: fleet
// status is never worth failing a tick for.
func (r *runner) publish(st *state.State) {
	if r.c.Fleet == nil || r.fleetSkipped {
		return
	}
	if r.fleet == nil {
		if err := r.connectFleet(); err != nil {
			r.fleetSkipped = true
			r.rep.Warn("job=%s: fleet status not published: %v", r.c.Job, err)
			return
		}
	}
	rec := published{State: st, Running: st.Result == state.Running,
		Done: r.job.HasMarker(state.MarkerDone), Halted: r.job.HasMarker(state.MarkerHalted)}
	if err := r.fleet.Publish(context.Background(), r.c.Fleet.Host, r.c.Job, rec); err != nil {
		r.rep.Warn("job=%s: fleet status not published: %v", r.c.Job, err)
	}
}
