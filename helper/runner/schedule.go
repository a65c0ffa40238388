package runner

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tickgate/tickgate/helper/calendar"
	"github.com/tickgate/tickgate/helper/reason"
	"github.com/tickgate/tickgate/helper/safefs"
	"github.com/tickgate/tickgate/helper/state"
)

// schedule is what a tick works out of its timer's schedule (whenDue).
type schedule struct {
	nextDue  *time.Time  // the schedule's next elapse as the tick started (nil: no schedule)
	elapses  []time.Time // the schedule's coming elapses (cached in state.json)
	interval float64     // the longest gap between them, in seconds
	nextErr  error       // why nextDue is unknown
	due      *time.Time  // when this tick was due (nil: not known, or a start off the schedule)
	once     sync.Once   // whenDue, run once (ensureDue)
}

// schedKey is how state.json remembers which schedule (and time zone) its
// cached elapses belong to. The zone is the host's (/etc/localtime), as the
// timer reads it: systemd-analyze runs without TZ (package sysprog).
func (r *runner) schedKey() string {
	zone, _ := os.Readlink("/etc/localtime")
	return strings.Join(r.c.Schedule, "\n") + "\n@|" + zone
}

// CacheElapses is how many coming elapses one systemd-analyze call caches.
const CacheElapses = 50

// whenDue works out, as the tick starts, the schedule's next elapse (what
// the next tick will be due at) and when this tick was due:
//   - the previous tick's NextDue, when it has passed: the timer fired this
//     tick for it — systemd computes a timer's next elapse from its last
//     trigger, so a Persistent= catch-up after downtime, or a tick that
//     follows an overrunning one, is due at the first elapse it missed;
//   - else, with a catch-up owed, the slot the gate skipped last: this is
//     the catch-up, started off the schedule;
//   - else nothing (a manual start, or the first tick of a new schedule).
//
// The next elapse comes from the elapses cached in state.json; only when
// they run out (or the schedule or zone changed) is systemd-analyze asked,
// for the next CacheElapses at once.
//
// It is reckoned from the tick's start whenever it runs (ensureDue): before
// the command when a check needs it (--start-deadline, a floating
// singleton's slot), else while the command runs, off the critical path.
func (r *runner) whenDue() {
	if len(r.c.Schedule) == 0 {
		return
	}
	now := r.started
	prev, _ := r.job.LoadSchedule()
	key := r.schedKey()
	if prev != nil && prev.Schedule == key {
		r.sched.elapses, r.sched.interval = prev.Elapses, prev.ExpectedInterval
	}
	next := firstAfter(r.sched.elapses, now)
	if next == nil {
		els, err := calendar.Elapses(context.Background(), r.c.Schedule, CacheElapses)
		if err != nil {
			r.sched.nextErr = err
			r.sched.elapses, r.sched.interval = nil, 0
		} else {
			r.sched.elapses, r.sched.interval = els, longestGap(els)
			next = firstAfter(els, now)
		}
	}
	r.sched.nextDue = next
	if prev == nil {
		return
	}
	switch {
	case prev.NextDue != nil && prev.Schedule == key && !prev.NextDue.After(now):
		d := prev.NextDue.UTC()
		r.sched.due = &d
	case prev.CatchUp != nil:
		d := prev.CatchUp.Slot.UTC()
		r.sched.due = &d
	}
}

// ensureDue runs whenDue once; every reader of what it works out (nextDue,
// elapses, interval, nextErr, due) calls it first.
func (r *runner) ensureDue() { r.sched.once.Do(r.whenDue) }

func firstAfter(els []time.Time, now time.Time) *time.Time {
	for _, e := range els {
		if e.After(now) {
			e := e.UTC()
			return &e
		}
	}
	return nil
}

// longestGap is the longest time between two consecutive elapses, in
// seconds (0 with fewer than two).
func longestGap(els []time.Time) float64 {
	var m time.Duration
	for i := 1; i < len(els); i++ {
		m = max(m, els[i].Sub(els[i-1]))
	}
	return m.Seconds()
}

// noteSchedule is part of every record: the next elapse for the next tick,
// and the cache of coming elapses (those still ahead).
func (r *runner) noteSchedule(s *state.State) {
	if r.sched.nextDue == nil {
		return
	}
	s.NextDue, s.Schedule, s.ExpectedInterval = r.sched.nextDue, r.schedKey(), r.sched.interval
	s.Elapses = s.Elapses[:0]
	for _, e := range r.sched.elapses {
		if !e.Before(*r.sched.nextDue) {
			s.Elapses = append(s.Elapses, e)
		}
	}
}

// gateSkip says whether a skip's reason is the gate's (closed, paused, a
// rollout window; host or fleet): the skips a catch-up makes good.
func gateSkip(why string) bool {
	for _, p := range []string{reason.GateClosed, reason.JobPaused, reason.RolloutWindow, reason.Blackout} {
		if reason.Has(why, p) {
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
	case result == state.Skipped && (gateSkip(why) || r.c.CatchUpOnPrecondition && preconditionSkip(why)):
		slot := time.Now().UTC()
		if r.sched.due != nil {
			slot = *r.sched.due
		}
		if at, ok := r.handedOverAt(); ok && !slot.After(at) {
			// A slot due before the deploy handed the job over from cron
			// (replaces_cron): cron ran it, nothing is owed.
			break
		}
		if s.CatchUp == nil || slot.After(s.CatchUp.Slot) {
			s.CatchUp = &state.CatchUp{Slot: slot, Reason: why}
		}
	case result == state.Skipped && (reason.Has(why, reason.Done) || reason.Has(why, reason.Halted) ||
		reason.Has(why, reason.MissedDeadline)):
		// A marker stops the job for good; a run past its deadline only
		// gets later.
		s.CatchUp = nil
	}
}

// preconditionSkip says whether a skip's reason is a precondition's.
func preconditionSkip(why string) bool {
	return reason.Has(why, reason.PreconditionFailed) || reason.Has(why, reason.DependencyStale)
}

// handedOverAt is when the deploy handed this job over from its cron entry
// (replaces_cron): the record the deploy writes beside the gate file,
// HANDOVER/JOB.json, root's. Read only for a gate skip that would owe a
// catch-up.
func (r *runner) handedOverAt() (time.Time, bool) {
	if r.c.GatePath == "" {
		return time.Time{}, false
	}
	root, err := safefs.OpenRoot(filepath.Join(filepath.Dir(r.c.GatePath), "handover"), false, 0)
	if err != nil {
		return time.Time{}, false
	}
	defer root.Close()
	if root.Trusted(nil) != nil {
		return time.Time{}, false
	}
	data, err := root.ReadFile(r.c.Job+".json", 64<<10)
	if err != nil {
		return time.Time{}, false
	}
	var rec struct {
		At float64 `json:"at"`
	}
	if json.Unmarshal(data, &rec) != nil || rec.At <= 0 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(rec.At)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}
