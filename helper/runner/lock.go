// Stage 2 of a tick: the lock group, on this host (package lockgroup), then
// fleet-wide for a fleet-scoped group (a lease in the fleet database).

package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/lockgroup"
	"github.com/tickgate/tickgate/helper/reason"
	"github.com/tickgate/tickgate/helper/report"
)

// slots is how many runs of the lock group may run at once on this host.
func (r *runner) slots() int { return max(r.c.LockSlots, 1) }

// acquire takes the lock group (a free slot of it), waiting up to --lock-wait; a signal during
// the wait ends it and is returned.
func (r *runner) acquire() (*lockgroup.Group, os.Signal, error) {
	if r.c.LockWait <= 0 {
		// No wait: nothing for a signal to end (a goroutine less per tick).
		lg, err := lockgroup.AcquireSlot(context.Background(), r.c.LockDir, r.c.Lock, r.slots(), 0, r.c.Owners)
		return lg, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got os.Signal
	stop, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case got = <-r.sigCh:
			cancel()
		case <-stop:
		}
	}()
	lg, err := lockgroup.AcquireSlot(ctx, r.c.LockDir, r.c.Lock, r.slots(), r.c.LockWait, r.c.Owners)
	close(stop)
	<-watched
	if got != nil {
		if lg != nil {
			lg.Close()
		}
		return nil, got, nil
	}
	return lg, nil, err
}

// pendingSignal returns a signal already delivered, if any.
func (r *runner) pendingSignal() os.Signal {
	select {
	case s := <-r.sigCh:
		return s
	default:
		return nil
	}
}

// takeFleetLock holds the lock group fleet-wide, or records why the tick
// does not run (the tick ends there): busy, a signal during the wait, no
// database.
// From here until releaseFleetLock the lease is renewed (fleet.Lease.Keep),
// through the command's run and any wait between its attempts, and the
// unit's watchdog is fed while the lease is sure.
func (r *runner) takeFleetLock() *ended {
	if r.fl.db == nil { // (admission connects first: only without Deps.Fleet)
		return r.fleetUnusable(errNoFleet)
	}
	l, sig, err := r.fleetLock()
	switch {
	case sig != nil:
		return r.finishInterrupted(sig, false, 0)
	case errors.Is(err, ErrFleetBusy):
		return r.skip(exitcode.Skipped, reason.F(reason.LockBusy, "fleet lock group %s %s", r.c.Lock, strings.TrimPrefix(err.Error(), ErrFleetBusy.Error()+": ")))
	case err != nil:
		return r.fleetUnusable(err)
	}
	r.fl.lease = l
	report.Watchdog() // the unit's watchdog runs from now (WatchdogSec=)
	r.fl.events, r.fl.stop = l.Keep(report.Watchdog)
	return nil
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

// takeFleetSlot takes the first free of the group's fleet slots: the lease
// of the group itself, then of GROUP#1, GROUP#2, ... (--lock-slots); busy
// only when every one is held (the last one's answer says by whom).
func (r *runner) takeFleetSlot(holder FleetHolder) (FleetLease, error) {
	var err error
	for i := range r.slots() {
		var l FleetLease
		l, err = r.fl.db.TakeLease(context.Background(), lockgroup.SlotName(r.c.Lock, i), holder, r.c.Fleet.LeaseTTL)
		if err == nil || !errors.Is(err, ErrFleetBusy) {
			return l, err
		}
	}
	if r.slots() > 1 {
		return nil, fmt.Errorf("%w: all %d slots are held (slot %d: %s)", ErrFleetBusy, r.slots(), r.slots()-1, strings.TrimPrefix(err.Error(), ErrFleetBusy.Error()+": "))
	}
	return nil, err
}

// fleetLock takes the lock group fleet-wide, retrying up to --lock-wait; a
// signal during the wait ends it and is returned.
func (r *runner) fleetLock() (FleetLease, os.Signal, error) {
	deadline := time.Now().Add(r.c.LockWait)
	holder := FleetHolder{Host: r.c.Fleet.Host, Job: r.c.Job, PID: os.Getpid()}
	for {
		l, err := r.takeFleetSlot(holder)
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
