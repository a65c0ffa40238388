//go:build !tickonly

package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tickgate/tickgate/helper/admit"
	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/fleet"
	"github.com/tickgate/tickgate/helper/gate"
	"github.com/tickgate/tickgate/helper/reason"
	"github.com/tickgate/tickgate/helper/state"
)

// links are what a tick reaches beyond the host, while it uses them (none
// in the tick-only build).
type links struct {
	fl       fleetConn // the fleet database and lock
	fleetErr error     // why the fleet could not be asked (not asked again this tick)
	ntf      *notifier // the job's notification targets (nil: none)
}

// fleetConn is the tick's fleet database and fleet lock, while it uses them.
type fleetConn struct {
	db   *fleet.Client
	held *fleet.Held
}

// fleetOpen says whether the tick is connected to the fleet database.
func (r *runner) fleetOpen() bool { return r.fl.db != nil }

// closeFleet ends the tick's connection (and with it a fleet lock still held).
func (r *runner) closeFleet() {
	if r.fl.db != nil {
		r.fl.db.Close()
		r.fl.db = nil
	}
}

// fleetLockHeld says whether the tick holds its lock group fleet-wide.
func (r *runner) fleetLockHeld() bool { return r.fl.held != nil }

// fence is the fencing token of the fleet lock this run holds (0: none).
func (r *runner) fence() int64 {
	if r.fl.held == nil {
		return 0
	}
	return r.fl.held.Fence
}

// watchFleetLock confirms the held fleet lock while the command runs: lost
// says when it went (nil, and a no-op stop, without one).
func (r *runner) watchFleetLock() (lost <-chan error, stop func()) {
	if r.fl.held == nil {
		return nil, func() {}
	}
	return r.fl.held.Watch(WatchInterval)
}

// takeFleetLock holds the lock group fleet-wide, or records why the tick
// does not run (stop=true): busy, a signal during the wait, no database.
func (r *runner) takeFleetLock() (Outcome, bool, error) {
	h, sig, err := r.fleetLock()
	switch {
	case sig != nil:
		out, err := r.finishInterrupted(sig, false, 0)
		return out, true, err
	case errors.Is(err, fleet.ErrBusy):
		out, err := r.skip(exitcode.Skipped, reason.F(reason.LockBusy, "fleet lock group %s %s", r.c.Lock, strings.TrimPrefix(err.Error(), fleet.ErrBusy.Error()+": ")))
		return out, true, err
	case err != nil:
		return r.fleetUnusable(err)
	}
	r.fl.held = h
	return Outcome{}, false, nil
}

// releaseFleetLock lets go of the fleet lock.
func (r *runner) releaseFleetLock() {
	if r.fl.held != nil {
		_ = r.fl.held.Release(context.Background())
	}
}

// fleetExtendBackoff records a fleet-scoped lock group's back-off.
func (r *runner) fleetExtendBackoff(b backoff.B) (*backoff.B, error) {
	return r.fl.db.ExtendBackoff(context.Background(), b)
}

// fleetView is the tick's fleet database as admission asks it: connected on
// first use; once connecting failed, not tried again this tick (the same
// error stands). A failed query never closes the connection: it may hold
// the tick's fleet lock.
type fleetView struct{ r *runner }

func (r *runner) fleetView() admit.Fleet { return fleetView{r} }

func (f fleetView) Gate(ctx context.Context) (*gate.Gate, error) {
	r := f.r
	if r.fl.db == nil {
		if r.fleetErr != nil {
			return nil, r.fleetErr
		}
		if err := r.connectFleet(); err != nil {
			r.fleetErr = err
			return nil, err
		}
	}
	return r.fl.db.Gate(ctx)
}

func (f fleetView) Backoff(ctx context.Context, lock string) (*backoff.B, error) {
	if f.r.fl.db == nil {
		return nil, f.r.fleetErr
	}
	return f.r.fl.db.Backoff(ctx, lock)
}

// connectFleet opens this tick's connection to the fleet database, named
// "tickgate HOST JOB" (operators find it in pg_stat_activity by that).
func (r *runner) connectFleet() error {
	fc := r.c.Fleet
	dsn, err := fleet.ReadDSN(fc.DSNFile, r.c.Owners)
	if err != nil {
		return err
	}
	r.fl.db, err = fleet.Connect(context.Background(), fleet.Options{DSN: dsn, Timeout: fc.Timeout,
		AppName: fmt.Sprintf("tickgate %s %s", fc.Host, r.c.Job)})
	return err
}

// claimSlot claims the tick's slot fleet-wide, as the last step before the
// command starts: the slot already ran elsewhere → skip; no answer → 78.
func (r *runner) claimSlot() (Outcome, bool, error) {
	s, err := r.fl.db.ClaimSlot(context.Background(), r.c.Job, r.slot, r.c.Fleet.Host)
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

// fleetLock takes the lock group fleet-wide, retrying up to --lock-wait; a
// signal during the wait ends it and is returned.
func (r *runner) fleetLock() (*fleet.Held, os.Signal, error) {
	deadline := time.Now().Add(r.c.LockWait)
	holder := fleet.Holder{Host: r.c.Fleet.Host, Job: r.c.Job, PID: os.Getpid()}
	for {
		h, err := r.fl.db.TryLock(context.Background(), r.c.Lock, holder)
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
	if r.c.Fleet == nil || r.fleetSkipped || r.fleetErr != nil {
		return
	}
	if r.fl.db == nil {
		if err := r.connectFleet(); err != nil {
			r.fleetSkipped = true
			r.rep.Warn("job=%s: fleet status not published: %v", r.c.Job, err)
			return
		}
	}
	rec := published{State: st, Running: st.Result == state.Running,
		Done: r.job.HasMarker(state.MarkerDone), Halted: r.job.HasMarker(state.MarkerHalted)}
	if err := r.fl.db.Publish(context.Background(), r.c.Fleet.Host, r.c.Job, rec); err != nil {
		r.rep.Warn("job=%s: fleet status not published: %v", r.c.Job, err)
	}
}
