package runner

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/tickgate/tickgate/helper/admit"
	"github.com/tickgate/tickgate/helper/proc"
	"github.com/tickgate/tickgate/helper/report"
	"github.com/tickgate/tickgate/helper/state"
)

// RetryPoll is how often the wait before a retry looks at the gate, the
// markers and (with fleet coordination) the fleet gate.
var RetryPoll = 500 * time.Millisecond

// retryable says whether an attempt that ended with code is tried again.
func (r *runner) retryable(code int) bool {
	return r.c.Retries > 0 && r.c.Retry[code] && r.try.n <= r.c.Retries
}

// attemptNo is the attempt to record: 0 when the job has no retries (the
// field stays out of state.json and the journal).
func (r *runner) attemptNo() int {
	if r.c.Retries == 0 {
		return 0
	}
	return r.try.n
}

// RetryDelay is the wait before attempt n+1 after attempt n failed: delay
// doubled per attempt, capped at max, with "equal jitter" (half fixed, half
// random) so that jobs failing together do not retry together.
func RetryDelay(n int, delay, max time.Duration, rnd func(int64) int64) time.Duration {
	if max <= 0 {
		max = 16 * delay
	}
	d := delay
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	if half := int64(d / 2); half > 0 {
		return time.Duration(half + rnd(half+1))
	}
	return d
}

// waitToRetry records the failed attempt, then waits for the next one. It
// ends the tick (non-nil) when the wait ends early:
// a signal (interrupted), or the gate, a pause, a rollout window, a marker
// or the fleet gate saying no more (the last attempt's failure stands).
func (r *runner) waitToRetry(code int, why string) *ended {
	c := r.c
	delay := RetryDelay(r.try.n, c.RetryDelay, c.RetryMaxDelay, rand.Int64N)
	next := time.Now().Add(delay).UTC()
	what := fmt.Sprintf("exit code %d is a retry code", code)
	if why != "" {
		what = why
	}
	msg := fmt.Sprintf("%s; attempt %d of %d failed, next in %s", what, r.try.n, c.Retries+1, delay.Round(time.Millisecond))
	r.rep.Tick(report.Entry{Job: c.Job, Lock: c.Lock, Result: "retrying", Reason: msg, RunID: r.runID,
		ExitCode: code, DurationSec: time.Since(r.started).Seconds(), Attempt: r.try.n})
	// Drain and status see the tick as running (the helper is alive and
	// holds the lock group) while it waits.
	if _, err := r.job.Update(context.Background(), func(s *state.State) {
		s.Lock = c.Lock
		s.RetriesTotal++
		s.Run = state.Run{RunID: r.runID, Result: state.Running, Reason: msg, StartedAt: &r.started, Attempt: r.try.n, NextAttemptAt: &next}
		s.PID, s.PIDStart = 0, 0
		s.HelperPID, s.HelperPIDStart = os.Getpid(), proc.StartTime(os.Getpid())
	}, state.Hooks{}); err != nil {
		r.rep.Warn("job %s: recording the retry: %v", c.Job, err)
	}
	report.Status("%s: attempt %d failed; next at %s", c.Job, r.try.n, next.Format(time.RFC3339))
	poll := time.NewTicker(RetryPoll)
	defer poll.Stop()
	until := time.NewTimer(delay)
	defer until.Stop()
	// Asked now (the attempt may have set a back-off), every RetryPoll, and
	// once more when the wait is over.
	check := func() *ended {
		if stop := r.stopRetrying(); stop != "" {
			r.try.lastWhy = stop
			return r.finishRun(code, "", false)
		}
		return nil
	}
	if e := check(); e != nil {
		return e
	}
	for {
		select {
		case s := <-r.sigCh:
			return r.finishInterrupted(s, true, code)
		case ev := <-r.leaseEvents():
			// The fleet lock is going or gone: no further attempt.
			return r.finishLost(ev.Err, code)
		case <-until.C:
			return check()
		case <-poll.C:
			if e := check(); e != nil {
				return e
			}
		}
	}
}

// stopRetrying says why no further attempt may start ("" = go on): the
// same checks as a tick's start (package admit), the deadline aside: the
// tick started in time.
func (r *runner) stopRetrying() string {
	d := admit.Decide(context.Background(), r.subject(nil), time.Now())
	r.noteDecision(d)
	if !d.Allowed {
		return d.Reason
	}
	return ""
}
