// Package fleettick gives a tick its fleet database: it implements
// runner.FleetDialer over package fleet. Only the full helper's main wires
// it (runner.Deps.Fleet), so tickgate-tick links no PostgreSQL driver.
package fleettick

import (
	"context"
	"errors"
	"time"

	"github.com/tickgate/tickgate/helper/fleet"
	"github.com/tickgate/tickgate/helper/runner"
	"github.com/tickgate/tickgate/helper/safefs"
)

// Dial reads the tick role's DSN from c.DSNFile and connects, as app.
func Dial(ctx context.Context, c runner.FleetConfig, owners *safefs.Owners, app string) (runner.FleetDB, error) {
	dsn, err := fleet.ReadDSN(c.DSNFile, owners)
	if err != nil {
		return nil, err
	}
	cl, err := fleet.Connect(ctx, fleet.Options{DSN: dsn, Timeout: c.Timeout, Insecure: c.Insecure, MaxSkew: c.MaxSkew, AppName: app})
	if err != nil {
		return nil, err
	}
	return db{cl}, nil
}

// db is a fleet.Client as a tick uses it: the gate, back-offs, Publish and
// the connection's methods are the client's own.
type db struct{ *fleet.Client }

var _ runner.FleetDB = db{}

func (d db) TakeLease(ctx context.Context, group string, h runner.FleetHolder, ttl time.Duration) (runner.FleetLease, error) {
	l, err := d.Client.TakeLease(ctx, group, fleet.Holder{Host: h.Host, Job: h.Job, PID: h.PID}, ttl)
	if err != nil {
		return nil, tag(err, fleet.ErrBusy, runner.ErrFleetBusy)
	}
	return lease{l}, nil
}

func (d db) ClaimSlot(ctx context.Context, job string, slot time.Time, host string, schedule []string) (runner.FleetSlot, error) {
	s, err := d.Client.ClaimSlot(ctx, job, slot, host, fleet.ScheduleHash(schedule))
	out := runner.FleetSlot{Slot: s.Slot, Host: s.Host, ClaimedAt: s.ClaimedAt}
	if err != nil {
		err = tag(tag(err, fleet.ErrSlotTaken, runner.ErrSlotTaken), fleet.ErrSlotSchedule, runner.ErrSlotSchedule)
	}
	return out, err
}

// lease is a held fleet.Lease as a tick uses it.
type lease struct{ l *fleet.Lease }

func (l lease) Fence() int64                      { return l.l.Fence }
func (l lease) BeatEvery() time.Duration          { return l.l.BeatEvery() }
func (l lease) Release(ctx context.Context) error { return l.l.Release(ctx) }

func (l lease) Status() runner.FleetLeaseStatus {
	s := l.l.Status()
	return runner.FleetLeaseStatus{Group: s.Group, Fence: s.Fence, Until: s.Until, Confirmed: s.Confirmed, Sure: s.Sure}
}

// Keep renews the lease (fleet.Lease.Keep) and hands its events on as the
// runner reads them.
func (l lease) Keep(alive func()) (<-chan runner.LeaseEvent, func()) {
	in, stop := l.l.Keep(alive)
	out := make(chan runner.LeaseEvent, 2)
	go func() {
		for e := range in {
			out <- runner.LeaseEvent{Hard: e.Kind == "hard", Err: e.Err}
		}
	}()
	return out, stop
}

// tag makes err also match as (errors.Is) when it matches was, keeping
// its text: the runner's reasons quote it.
func tag(err, was, as error) error {
	if err == nil || !errors.Is(err, was) {
		return err
	}
	return tagged{err, as}
}

type tagged struct{ err, as error }

func (t tagged) Error() string   { return t.err.Error() }
func (t tagged) Unwrap() []error { return []error{t.err, t.as} }
