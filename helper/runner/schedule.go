package runner

import (
	"context"
	"strings"
	"time"

	"github.com/tickgate/tickgate/helper/calendar"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/reason"
	"github.com/tickgate/tickgate/helper/state"
)

// schedKey is how state.json remembers which schedule NextDue belongs to.
func (r *runner) schedKey() string { return strings.Join(r.c.Schedule, "\n") }

// whenDue works out, as the tick starts, the schedule's next elapse (what
// the next tick will be due at) and when this tick was due:
//   - the previous tick's NextDue, when it has passed: the timer fired this
//     tick for it — systemd computes a timer's next elapse from its last
//     trigger, so a Persistent= catch-up after downtime, or a tick that
//     follows an overrunning one, is due at the first elapse it missed;
//   - else, with a catch-up owed, the slot the gate skipped last: this is
//     the catch-up, started off the schedule;
//   - else nothing (a manual start, or the first tick of a new schedule).
func (r *runner) whenDue() {
	if len(r.c.Schedule) == 0 {
		return
	}
	now := time.Now().UTC()
	next, err := calendar.Next(context.Background(), r.c.Schedule)
	if err != nil {
		r.nextErr = err
	} else {
		r.nextDue = &next
	}
	prev, err := r.job.Load()
	if err != nil || prev == nil {
		return
	}
	switch {
	case prev.NextDue != nil && prev.Schedule == r.schedKey() && !prev.NextDue.After(now):
		d := prev.NextDue.UTC()
		r.due = &d
	case prev.CatchUp != nil:
		d := prev.CatchUp.Slot.UTC()
		r.due = &d
	}
}

// noteSchedule is part of every record: the next elapse for the next tick.
func (r *runner) noteSchedule(s *state.State) {
	if r.nextDue != nil {
		s.NextDue, s.Schedule = r.nextDue, r.schedKey()
	}
}

// checkDeadline skips a run that would start more than --start-deadline
// after it was due (a Persistent catch-up after downtime, a long lock wait,
// a late catch-up).
func (r *runner) checkDeadline() (Outcome, bool, error) {
	if r.c.StartDeadline <= 0 {
		return Outcome{}, false, nil
	}
	if r.nextErr != nil {
		r.rep.Warn("job=%s: --start-deadline not applied: %v", r.c.Job, r.nextErr)
	}
	if r.due == nil {
		return Outcome{}, false, nil
	}
	late := time.Since(*r.due)
	if late <= r.c.StartDeadline {
		return Outcome{}, false, nil
	}
	out, err := r.skip(exitcode.Skipped, reason.F(reason.MissedDeadline, "due %s, %s late (start_deadline %s)",
		r.due.Format(time.RFC3339), late.Round(time.Second), r.c.StartDeadline))
	return out, true, err
}

// gateSkip says whether a skip's reason is the gate's (closed, paused, a
// rollout window; host or fleet): the skips a catch-up makes good.
func gateSkip(why string) bool {
	for _, p := range []string{reason.GateClosed, reason.JobPaused, reason.RolloutWindow} {
		if strings.HasPrefix(why, p+":") {
			return true
		}
	}
	return false
}

// noteCatchUp updates the owed catch-up for a tick's outcome: a gate skip
// owes one (for when this tick was due, else now); a marker or a missed
// deadline ends it; a run of the command pays it.
func (r *runner) noteCatchUp(s *state.State, result, why string, ran bool) {
	if !r.c.CatchUp {
		s.CatchUp = nil
		return
	}
	switch {
	case ran:
		s.CatchUp = nil
	case result == state.Skipped && gateSkip(why):
		slot := time.Now().UTC()
		if r.due != nil {
			slot = *r.due
		}
		if s.CatchUp == nil || slot.After(s.CatchUp.Slot) {
			s.CatchUp = &state.CatchUp{Slot: slot, Reason: why}
		}
	case result == state.Skipped && (strings.HasPrefix(why, reason.Done+":") || strings.HasPrefix(why, reason.Halted+":") ||
		strings.HasPrefix(why, reason.MissedDeadline+":")):
		// A marker stops the job for good; a run past its deadline only
		// gets later.
		s.CatchUp = nil
	}
}
