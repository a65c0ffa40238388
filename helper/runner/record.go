// Stage 5 of a tick: the outcome, recorded under the job's state lock: the
// marker first, then state.json and the metrics together, then the journal
// entry. Every way a tick ends comes through here: a run (finishRun), a
// lost fleet lock (finishLost), a signal (finishInterrupted), a skip.

package runner

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/metrics"
	"github.com/tickgate/tickgate/helper/reason"
	"github.com/tickgate/tickgate/helper/report"
	"github.com/tickgate/tickgate/helper/state"
)

// tick is a tick's outcome: its result, reason, and the marker it writes.
type tick struct{ result, reason, marker string }

// finishRun classifies the child's exit code and records it. A non-empty
// why explains a failure the code alone does not (cannot start, timeout).
func (r *runner) finishRun(code int, why string, timedOut bool) *ended {
	c := r.c
	now := time.Now().UTC()
	t := tick{result: state.Failed, reason: why}
	exit := code
	switch {
	case timedOut:
	case c.Done[code]:
		t.result, t.marker, exit = state.Done, state.MarkerDone, 0
		t.reason = fmt.Sprintf("%s %d: job drained; runs again only after `tickgate clear %s`", reason.DoneCode, code, c.Job)
	case c.OK[code]:
		t.result, exit = state.Success, 0
	case c.Halt[code]:
		t.result, t.marker = state.Halted, state.MarkerHalted
		t.reason = fmt.Sprintf("%s %d: job halted; runs again only after `tickgate clear %s`", reason.HaltCode, code, c.Job)
	}
	if t.result == state.Failed && t.reason == "" {
		t.reason = fmt.Sprintf("exit code %d is not an ok code", code)
	}
	if r.c.Retries > 0 && r.try.n > 1 && t.result == state.Success {
		t.reason = fmt.Sprintf("ok on attempt %d of %d", r.try.n, r.c.Retries+1)
	}
	if t.result == state.Failed && r.c.Retries > 0 && (r.c.Retry[code] || r.try.n > 1) {
		t.reason += fmt.Sprintf(" (attempt %d of %d", r.try.n, r.c.Retries+1)
		if r.try.lastWhy != "" {
			t.reason += "; no more attempts: " + r.try.lastWhy
		}
		t.reason += ")"
	}
	return r.record(t, exit, code, func(s *state.State, t *tick) {
		s.RunsTotal++
		if t.result == state.Success || t.result == state.Done {
			s.ConsecutiveFailures = 0
			s.LastSuccessAt = &now
		} else {
			s.ConsecutiveFailures++
			s.FailuresTotal++
			if t.result == state.Failed && c.HaltAfter > 0 && s.ConsecutiveFailures >= c.HaltAfter {
				t.result, t.marker = state.Halted, state.MarkerHalted
				t.reason = fmt.Sprintf("%s; breaker tripped after %d consecutive failures; runs again only after `tickgate clear %s`",
					t.reason, s.ConsecutiveFailures, c.Job)
			}
		}
		r.setRun(s, t.result, t.reason, now, code)
	})
}

// setRun records a run of the command as the latest tick and the last run.
func (r *runner) setRun(s *state.State, result, reason string, now time.Time, code int) {
	run := r.stamped(state.Run{RunID: r.runID, Result: result, Reason: reason, StartedAt: &r.started,
		FinishedAt: &now, DurationSeconds: now.Sub(r.started).Seconds(), ExitCode: &code, Fence: r.fence(), Slot: r.slotClaimed(), Attempt: r.attemptNo()})
	endTick(s, run)
	s.LastRun = &run
	s.AddHistory(run, r.c.History)
}

// slotClaimed is the floating singleton's slot this run claimed (nil: none).
func (r *runner) slotClaimed() *time.Time {
	if !r.claim.ok {
		return nil
	}
	s := r.claim.slot
	return &s
}

// finishLost records a run stopped because its fleet lock went: like an
// interruption (it does not move the breaker), naming the lost lock.
func (r *runner) finishLost(lost error, childCode int) *ended {
	exit := 128 + int(syscall.SIGTERM)
	t := tick{result: state.Interrupted, reason: reason.F(reason.FleetLockLost, "%v; the job's process group was stopped", lost)}
	now := time.Now().UTC()
	return r.record(t, exit, childCode, func(s *state.State, t *tick) {
		s.RunsTotal++
		r.setRun(s, t.result, t.reason, now, childCode)
	})
}

// stamped is run with what the tick knows of how it was started: the unit's
// invocation, and whether an operator started it (tickgate start).
func (r *runner) stamped(run state.Run) state.Run {
	run.Invocation = invocationID
	if r.req != nil {
		run.Manual, run.Forced = true, r.req.Force
	}
	return run
}

// invocationID is the unit invocation systemd gave this tick: "" outside
// systemd, or if INVOCATION_ID is not systemd's 32 hex digits.
var invocationID = func() string {
	v := os.Getenv("INVOCATION_ID")
	if len(v) != 32 {
		return ""
	}
	for i := 0; i < len(v); i++ {
		if !('0' <= v[i] && v[i] <= '9' || 'a' <= v[i] && v[i] <= 'f') {
			return ""
		}
	}
	return v
}()

// endTick makes run the latest tick; nothing of this job runs any more.
func endTick(s *state.State, run state.Run) {
	s.Run = run
	s.PID, s.PIDStart, s.HelperPID, s.HelperPIDStart = 0, 0, 0, 0
}

// finishInterrupted records a tick stopped by a signal to the helper. ran says
// the command had started; childCode is then its exit code.
func (r *runner) finishInterrupted(sig os.Signal, ran bool, childCode int) *ended {
	signo := int(syscall.SIGTERM)
	if s, ok := sig.(syscall.Signal); ok {
		signo = int(s)
	}
	exit := 128 + signo
	t := tick{result: state.Interrupted, reason: fmt.Sprintf("%s received; forwarded to the job's process group", sig)}
	if !ran {
		t.reason = fmt.Sprintf("%s received before the job started", sig)
		childCode = exit
	}
	now := time.Now().UTC()
	return r.record(t, exit, childCode, func(s *state.State, t *tick) {
		if ran {
			s.RunsTotal++
			r.setRun(s, t.result, t.reason, now, childCode)
		} else if !s.IsRunning() {
			endTick(s, r.stamped(state.Run{RunID: r.runID, Result: t.result, Reason: t.reason, StartedAt: &r.started, FinishedAt: &now, ExitCode: &exit}))
		}
	})
}

// skip records a tick that did not run the command.
func (r *runner) skip(code int, why string) *ended {
	now := time.Now().UTC()
	return r.record(tick{result: state.Skipped, reason: why}, code, code, func(s *state.State, t *tick) {
		s.SkipsTotal++
		s.LastSkip = &state.Skip{At: now, Reason: t.reason, Invocation: invocationID}
		if s.IsRunning() {
			return // another run of this job is in progress: keep its record
		}
		c := code
		endTick(s, r.stamped(state.Run{RunID: r.runID, Result: t.result, Reason: t.reason, StartedAt: &now, FinishedAt: &now, ExitCode: &c}))
	})
}

// RunningRecordDelay is how long a command runs before its "running" record
// (pid, start time) is written to state.json.
var RunningRecordDelay = 50 * time.Millisecond

// MarkerTries is how often a done/halted marker write is tried before the
// tick fails loudly (exit 70): a marker that is not written means the job
// would run again at its next tick.
var MarkerTries = []time.Duration{0, 100 * time.Millisecond, 400 * time.Millisecond}

// record applies fn to the job's state under its state lock and writes, in
// this order: the marker (if the tick has one), then state.json and the
// metrics file together. It then reports the tick. fn may change t (the
// breaker turns a failure into a halt).
func (r *runner) record(t tick, exit, childCode int, fn func(*state.State, *tick)) *ended {
	c := r.c
	hooks := state.Hooks{
		Before: func(j *state.Job, _ *state.State) error {
			if t.marker == "" {
				return nil
			}
			cc := childCode
			m := state.Marker{At: time.Now().UTC(), Reason: t.reason, ExitCode: &cc, RunID: r.runID}
			var err error
			for _, wait := range MarkerTries {
				time.Sleep(wait)
				if err = j.WriteMarker(t.marker, m); err == nil {
					return nil
				}
			}
			return fmt.Errorf("the %s marker was NOT written (%d tries): %w; the job will run again at its next tick unless an operator runs `tickgate halt %s`",
				t.marker, len(MarkerTries), err, c.Job)
		},
	}
	if c.MetricsDir != "" {
		hooks.Along = func(st *state.State) error {
			var until time.Time
			if r.seen.backoff != nil {
				until = r.seen.backoff.Until
			}
			now := time.Now()
			if err := metrics.WriteJob(c.MetricsDir, r.job, st, now, until, r.gateClosedSince(now), c.Owners); err != nil {
				return fmt.Errorf("write metrics: %w", err)
			}
			return nil
		}
	}
	hooks.Pre, r.try.pre = r.try.pre, nil
	r.ensureDue() // (before the state lock: it may ask systemd-analyze)
	var ran bool
	var prevFails int
	st, err := r.job.Update(r.untilSignal(), func(s *state.State) {
		s.Lock = c.Lock
		runs := s.RunsTotal
		prevFails = s.ConsecutiveFailures
		fn(s, &t)
		ran = s.RunsTotal > runs
		s.Admission = r.admissionRecord()
		r.noteSchedule(s)
		r.noteCatchUp(s, t.result, t.reason, ran)
	}, hooks)
	if err == nil {
		r.publish(st)
	}
	// A failure must not look like success to systemd: exit 0 (an exit code
	// that is not an ok code) and 75 (a skip, SuccessExitStatus=) become 1.
	if (t.result == state.Failed || t.result == state.Halted) && (exit == 0 || exit == exitcode.Skipped) {
		exit = exitcode.Failure
	}
	r.rep.Tick(report.Entry{Job: c.Job, Lock: c.Lock, Result: t.result, Reason: t.reason, RunID: r.runID,
		ExitCode: exit, DurationSec: time.Since(r.started).Seconds(), Attempt: r.attemptNo()})
	if ran && err == nil {
		// Sent when the tick has let go of its locks (Run).
		r.notePending(t.result, t.reason, childCode, transition(t.result, prevFails, st.ConsecutiveFailures))
	}
	r.stopWatch()
	e := &ended{out: Outcome{Result: t.result, Reason: t.reason, ExitCode: exit}}
	if err != nil {
		e.err = fmt.Errorf("job %s: recording the outcome: %w", c.Job, err)
	}
	return e
}

// untilSignal is a context that ends when a signal reaches the helper (the
// state lock's own bound applies too): systemd stopping a tick that waits
// to record must not wait for it. It watches for the signal only once it is
// waited on (Done): a record that takes its state lock at once, as nearly
// all do, starts no goroutine for it.
func (r *runner) untilSignal() context.Context {
	s := &signalCtx{Context: context.Background(), r: r}
	r.stopWatch = s.stop
	return s
}

// signalCtx is untilSignal's context.
type signalCtx struct {
	context.Context // Background's: no deadline, no values
	r               *runner
	once            sync.Once
	ctx             context.Context // set by the first Done (nil after stop)
	cancel          context.CancelFunc
}

func (s *signalCtx) watch() {
	s.once.Do(func() {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		go func(ctx context.Context, cancel context.CancelFunc) {
			select {
			case sig := <-s.r.sigCh:
				s.r.rep.Warn("job %s: %s received while recording the outcome; giving up on it", s.r.c.Job, sig)
				cancel()
			case <-ctx.Done():
			}
		}(s.ctx, s.cancel)
	})
}

func (s *signalCtx) Done() <-chan struct{} {
	s.watch()
	if s.ctx == nil {
		return nil // stopped before any wait: never ends
	}
	return s.ctx.Done()
}

func (s *signalCtx) Err() error {
	s.watch()
	if s.ctx == nil {
		return nil
	}
	return s.ctx.Err()
}

// stop ends the watch, or keeps it from starting.
func (s *signalCtx) stop() {
	s.once.Do(func() {})
	if s.cancel != nil {
		s.cancel()
	}
}
