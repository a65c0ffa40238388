package runner

import (
	"time"

	"github.com/tickgate/tickgate/helper/admit"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/reason"
)

// slotClaim is a floating singleton's slot, once named (slotOf) and claimed
// (claimSlot, fleet.go).
type slotClaim struct {
	slot time.Time // the elapse that ends the slot (zero: not a floating singleton)
	ok   bool      // the slot is this tick's
}

// slotOf names the slot this tick serves: the schedule's next elapse, asked
// of systemd as the tick starts. Every host whose timer fired for the same
// scheduled time gets the same answer from its own clock, whatever its skew
// or random delay (the deploy checks that the delay is well inside the
// shortest interval).
func (r *runner) slotOf() *ended {
	r.ensureDue()
	if r.sched.nextErr != nil {
		return r.skip(exitcode.GateBad, reason.F(reason.FleetSlotUnavailable, "%v (a floating singleton never runs without its slot)", r.sched.nextErr))
	}
	r.claim.slot = *r.sched.nextDue
	return nil
}

// fleetUnusable applies the job's policy to a fleet database it cannot use
// (admission's rule): a floating singleton and a fleet-scoped lock group
// never run without it; others follow --gate-fail.
func (r *runner) fleetUnusable(err error) *ended {
	r.closeFleet()
	d := admit.Unreachable(r.subject(nil), err)
	r.noteDecision(d)
	if d.Allowed {
		for _, w := range d.Warnings {
			r.rep.Warn("job %s: %s", r.c.Job, w)
		}
		return nil
	}
	return r.skip(d.Code, d.Reason)
}
