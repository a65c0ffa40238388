// Stages 1 and 3 of a tick: may the job start? Package admit decides, from
// one ordered list of checks; this is the tick's side of it: what it asks
// about, and what it keeps of the answer (the gate and the back-off it read,
// for the metrics; whether the fleet was down).

package runner

import (
	"context"
	"time"

	"github.com/tickgate/tickgate/helper/admit"
	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/gate"
	"github.com/tickgate/tickgate/helper/metrics"
	"github.com/tickgate/tickgate/helper/state"
)

// seen is what the tick's admissions read last: kept for the metrics (the
// gate's closure, the back-off's end) and so that a fleet found down is not
// asked again this tick.
type seen struct {
	gate      *gate.Gate // the gate as last read for admission (nil: not read, or unusable)
	gateRead  bool       // gate is set (a marker may decide before the gate is read)
	backoff   *backoff.B // the lock group's back-off as last known (nil: none)
	fleetDown bool       // the fleet was unusable and --gate-fail open let the tick go on
}

// subject is the tick as admission asks about it; due is when the tick was
// due (nil for a retry, or a check from inside the running job: those are
// not starts on the schedule).
func (r *runner) subject(due *time.Time) admit.Subject {
	c := r.c
	s := admit.Subject{Job: c.Job, Dir: r.job, GatePath: c.GatePath, Lock: c.Lock, LockDir: c.LockDir, Owners: c.Owners,
		Policy: admit.Policy{ExpectedRuntime: c.ExpectedRuntime, GateFailOpen: c.GateFailOpen},
		Due:    due, StartDeadline: c.StartDeadline, Force: r.req != nil && r.req.Force,
		Blackouts: c.Blackouts, Requires: c.Requires, States: r.store}
	if c.Fleet != nil {
		s.Fleet, s.FleetLock, s.Singleton = r.fleetView(), c.Fleet.LockScope, c.Fleet.Singleton
	}
	return s
}

// takeRequest takes the operator's start request (tickgate start) the job's
// directory holds, if any: this tick is that start.
func (r *runner) takeRequest() {
	q, err := r.job.TakeRequest(time.Now())
	if err != nil {
		r.rep.Warn("job %s: start request not taken: %v", r.c.Job, err)
		return
	}
	r.req = q
}

// admission records a skip when the job may not start (and ends the tick); first
// says to print the warnings --gate-fail open let it go past (once per
// tick).
func (r *runner) admission(first bool) *ended {
	var due *time.Time
	if r.c.StartDeadline > 0 && r.req == nil { // an operator's start is never late
		r.ensureDue()
		due = r.sched.due
	}
	d := admit.Decide(context.Background(), r.subject(due), time.Now())
	r.noteDecision(d)
	if d.Allowed {
		if first {
			for _, w := range d.Warnings {
				r.rep.Warn("job %s: %s", r.c.Job, w)
			}
		}
		return nil
	}
	return r.skip(d.Code, d.Reason)
}

// admissionRecord is the tick's admission flags as state.json keeps them.
func (r *runner) admissionRecord() *state.Admission {
	c := r.c
	a := &state.Admission{ExpectedRuntime: c.ExpectedRuntime.Seconds(), GateFailOpen: c.GateFailOpen}
	if c.LockSlots > 1 {
		a.LockSlots = c.LockSlots
	}
	a.Requires = c.RequiresText
	if c.Fleet != nil {
		a.Fleet, a.Singleton = true, c.Fleet.Singleton
		if c.Fleet.LockScope {
			a.LockScope = "fleet"
		}
	}
	if *a == (state.Admission{}) {
		return nil
	}
	return a
}

// noteDecision keeps what an admission read (the gate and the back-off, for
// the metrics) and whether the fleet is down (not asked again this tick).
func (r *runner) noteDecision(d admit.Decision) {
	if d.GateRead {
		r.seen.gate, r.seen.gateRead = d.Gate, true
	}
	r.seen.backoff = d.Backoff
	if d.FleetDown {
		r.seen.fleetDown = true
	}
}

// gateClosedSince is the metric's value: from the gate the tick was last
// admitted (or stopped) by; read here only if no admission got to it (a
// marker stopped the tick first).
func (r *runner) gateClosedSince(now time.Time) time.Time {
	if !r.seen.gateRead && r.c.GatePath != "" {
		r.seen.gate, _, _ = gate.Load(r.c.GatePath)
		r.seen.gateRead = true
	}
	return metrics.GateClosedSince(r.seen.gate, r.c.Job, now)
}
