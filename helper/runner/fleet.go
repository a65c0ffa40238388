// The fleet database, as a tick uses it (Deps.Fleet): asked by admission
// for the fleet gate and back-offs, holding a fleet-scoped lock group's
// lease (lock.go), claiming a floating singleton's slot, publishing the
// job's record for fleet status, answering the job's "fence".

package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tickgate/tickgate/helper/admit"
	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/gate"
	"github.com/tickgate/tickgate/helper/reason"
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

func (f fleetView) LastSuccess(ctx context.Context, job string) (*time.Time, error) {
	if f.r.fl.db == nil {
		return nil, f.r.fleetErr
	}
	return f.r.fl.db.LastSuccess(ctx, job)
}

func (f fleetView) Blackouts(ctx context.Context) ([]byte, error) {
	if f.r.fl.db == nil {
		return nil, f.r.fleetErr
	}
	return f.r.fl.db.Blackouts(ctx)
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
func (r *runner) claimSlot() *ended {
	if r.fl.db == nil { // (admission connects first: only without Deps.Fleet)
		return r.fleetUnusable(errNoFleet)
	}
	s, err := r.fl.db.ClaimSlot(context.Background(), r.c.Job, r.claim.slot, r.c.Fleet.Host, r.c.Schedule)
	switch {
	case err == nil:
		r.claim.ok = true
		return nil
	case errors.Is(err, ErrSlotSchedule):
		return r.skip(exitcode.GateBad, reason.F(reason.SlotScheduleMismatch, "%s", strings.TrimPrefix(err.Error(), ErrSlotSchedule.Error()+": ")))
	case errors.Is(err, ErrSlotTaken):
		what := "the slot ending " + r.claim.slot.Format(time.RFC3339)
		if s.Slot.After(r.claim.slot) {
			what = "a later slot (ending " + s.Slot.UTC().Format(time.RFC3339) + ")"
		}
		return r.skip(exitcode.Skipped, reason.F(reason.SlotTaken, "%s ran on %s (claimed %s)",
			what, s.Host, s.ClaimedAt.UTC().Format(time.RFC3339)))
	default:
		return r.skip(exitcode.GateBad, reason.F(reason.FleetSlotUnavailable, "%v (a floating singleton never runs without its slot)", err))
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
	if r.c.Fleet == nil || r.seen.fleetDown || r.fleetErr != nil {
		return
	}
	if st.Result == state.Running && (r.fl.db == nil || !r.fl.db.Connected()) {
		return
	}
	if r.fl.db == nil {
		if err := r.connectFleet(); err != nil {
			r.seen.fleetDown = true
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
