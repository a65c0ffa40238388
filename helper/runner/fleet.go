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
	"github.com/tickgate/tickgate/helper/gate"
	"github.com/tickgate/tickgate/helper/reason"
	"github.com/tickgate/tickgate/helper/report"
	"github.com/tickgate/tickgate/helper/state"
)

// links are what a tick reaches beyond the host (Deps), while it uses them.
type links struct {
	fl       fleetConn // the fleet database and lock
	fleetErr error     // why the fleet could not be asked (not asked again this tick)
	ntf      *notifier // the job's notification targets (nil: none)
}

// fleetConn is the tick's fleet database and fleet lock, while it uses them.
type fleetConn struct {
	db     FleetDB
	lease  FleetLease
	events <-chan LeaseEvent // the lease's (nil: none held)
	stop   func()            // ends the lease's renewals
}

// fleetOpen says whether the tick has a fleet client.
func (r *runner) fleetOpen() bool { return r.fl.db != nil }

// closeFleet ends the tick's connection.
func (r *runner) closeFleet() {
	if r.fl.db != nil {
		r.fl.db.Close()
		r.fl.db = nil
	}
}

// fleetLockHeld says whether the tick holds its lock group fleet-wide.
func (r *runner) fleetLockHeld() bool { return r.fl.lease != nil }

// fence is the fencing token of the fleet lock this run holds (0: none).
func (r *runner) fence() int64 {
	if r.fl.lease == nil {
		return 0
	}
	return r.fl.lease.Fence()
}

// leaseEvents says what the held lease asks of its holder (nil: none held).
func (r *runner) leaseEvents() <-chan LeaseEvent { return r.fl.events }

// takeFleetLock holds the lock group fleet-wide, or records why the tick
// does not run (stop=true): busy, a signal during the wait, no database.
// From here until releaseFleetLock the lease is renewed (fleet.Lease.Keep),
// through the command's run and any wait between its attempts, and the
// unit's watchdog is fed while the lease is sure.
func (r *runner) takeFleetLock() (Outcome, bool, error) {
	if r.fl.db == nil { // (admission connects first: only without Deps.Fleet)
		return r.fleetUnusable(errNoFleet)
	}
	l, sig, err := r.fleetLock()
	switch {
	case sig != nil:
		out, err := r.finishInterrupted(sig, false, 0)
		return out, true, err
	case errors.Is(err, ErrFleetBusy):
		out, err := r.skip(exitcode.Skipped, reason.F(reason.LockBusy, "fleet lock group %s %s", r.c.Lock, strings.TrimPrefix(err.Error(), ErrFleetBusy.Error()+": ")))
		return out, true, err
	case err != nil:
		return r.fleetUnusable(err)
	}
	r.fl.lease = l
	report.Watchdog() // the unit's watchdog runs from now (WatchdogSec=)
	r.fl.events, r.fl.stop = l.Keep(report.Watchdog)
	return Outcome{}, false, nil
}

// releaseFleetLock stops renewing the lease and gives it back. The unit's
// watchdog is fed from then on until the helper exits: the lease it guarded
// is gone.
func (r *runner) releaseFleetLock() {
	if r.fl.lease == nil {
		return
	}
	r.fl.stop()
	// Fed before the release's round trip, which may take the fleet
	// timeout: the job is over, its unit must not fail for a slow release.
	every := r.fl.lease.BeatEvery()
	go func() {
		for range time.Tick(every) {
			report.Watchdog()
		}
	}()
	_ = r.fl.lease.Release(context.Background())
}

// fleetExtendBackoff records a fleet-scoped lock group's back-off, through
// the database's check (this host's role, 7 days by its clock).
func (r *runner) fleetExtendBackoff(b backoff.B) (*backoff.B, error) {
	return r.fl.db.JobBackoff(context.Background(), b, r.c.Fleet.Host, r.c.Job, r.runID)
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
	if r.deps.Fleet == nil {
		return errNoFleet
	}
	fc := r.c.Fleet
	db, err := r.deps.Fleet(context.Background(), *fc, r.c.Owners, fmt.Sprintf("tickgate %s %s", fc.Host, r.c.Job))
	if err != nil {
		return err
	}
	r.fl.db = db
	return nil
}

// fleetIdle lets go of the connection while the command runs when the tick
// holds no lease to renew: a fleet of running jobs holds no server
// connection. The outcome is published on a new one.
func (r *runner) fleetIdle() {
	if r.fl.db != nil && r.fl.lease == nil {
		r.fl.db.Disconnect()
	}
}

// claimSlot claims the tick's slot fleet-wide, as the last step before the
// command starts: the slot already ran elsewhere → skip; no answer → 78.
func (r *runner) claimSlot() (Outcome, bool, error) {
	if r.fl.db == nil { // (admission connects first: only without Deps.Fleet)
		return r.fleetUnusable(errNoFleet)
	}
	s, err := r.fl.db.ClaimSlot(context.Background(), r.c.Job, r.slot, r.c.Fleet.Host, r.c.Schedule)
	switch {
	case err == nil:
		r.claimed = true
		return Outcome{}, false, nil
	case errors.Is(err, ErrSlotSchedule):
		out, err := r.skip(exitcode.GateBad, reason.F(reason.SlotScheduleMismatch, "%s", strings.TrimPrefix(err.Error(), ErrSlotSchedule.Error()+": ")))
		return out, true, err
	case errors.Is(err, ErrSlotTaken):
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
func (r *runner) fleetLock() (FleetLease, os.Signal, error) {
	deadline := time.Now().Add(r.c.LockWait)
	holder := FleetHolder{Host: r.c.Fleet.Host, Job: r.c.Job, PID: os.Getpid()}
	for {
		l, err := r.fl.db.TakeLease(context.Background(), r.c.Lock, holder, r.c.Fleet.LeaseTTL)
		if err == nil || !errors.Is(err, ErrFleetBusy) || !time.Now().Before(deadline) {
			return l, nil, err
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
// status is never worth failing a tick for. A running record is published
// only by a tick that holds its connection anyway (a lease to renew).
func (r *runner) publish(st *state.State) {
	if r.c.Fleet == nil || r.fleetSkipped || r.fleetErr != nil {
		return
	}
	if st.Result == state.Running && (r.fl.db == nil || !r.fl.db.Connected()) {
		return
	}
	if r.fl.db == nil {
		if err := r.connectFleet(); err != nil {
			r.fleetSkipped = true
			r.rep.Warn("job %s: fleet status not published: %v", r.c.Job, err)
			return
		}
	}
	rec := published{State: st, Running: st.Result == state.Running,
		Done: r.job.HasMarker(state.MarkerDone), Halted: r.job.HasMarker(state.MarkerHalted)}
	if err := r.fl.db.Publish(context.Background(), r.c.Fleet.Host, r.c.Job, rec); err != nil {
		r.rep.Warn("job %s: fleet status not published: %v", r.c.Job, err)
	}
}

// fenceReply answers "fence" from the lease this tick holds, without a round
// trip: the renewals already run every sixth of the lease.
func (r *runner) fenceReply() ControlReply {
	l := r.fl.lease
	if l == nil {
		return ControlReply{Error: fmt.Sprintf("job %s holds no fleet lock (its lock_scope is not fleet)", r.c.Job)}
	}
	st := l.Status()
	return ControlReply{OK: true, Fence: &Fence{Group: st.Group, Fence: st.Fence, Until: st.Until,
		ConfirmedSeconds: st.Confirmed.Seconds(), Held: st.Sure}}
}
