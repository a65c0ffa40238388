package runner

import (
	"context"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/tickgate/tickgate/helper/notify"
	"github.com/tickgate/tickgate/helper/unitlog"
)

// NotifyBudget bounds all the sending of one tick.
var NotifyBudget = 20 * time.Second

// OutputLines is how many of the job's last output lines a webhook gets.
const OutputLines = 20

// notifier is one tick's notifications.
type notifier struct {
	cfg     *notify.Config
	started sync.WaitGroup
	pending *pendingEnd // the run's outcome, sent once the tick has let go of its locks
}

// pendingEnd is a recorded run's outcome, waiting to be sent.
type pendingEnd struct {
	result, reason string
	exit           int
	transition     string
}

// loadNotify reads the job's targets; a problem only warns.
func (r *runner) loadNotify() {
	if r.deps.Notify == nil {
		return // this build sends none (its command line hands such ticks to tickgate)
	}
	cfg, err := notify.Load(r.c.NotifyDir, r.c.Job, r.c.Owners)
	if err != nil {
		r.rep.Warn("job %s: notifications off for this tick: %v", r.c.Job, err)
		return
	}
	if cfg != nil && len(cfg.Targets) > 0 {
		r.ntf = &notifier{cfg: cfg}
	}
}

// notifyStart pings healthchecks targets that want every run, without
// making the command wait for it.
func (r *runner) notifyStart() {
	if r.ntf == nil || r.try.n > 1 {
		return
	}
	for _, t := range r.ntf.cfg.Targets {
		r.ntf.started.Add(1)
		go func() {
			defer r.ntf.started.Done()
			ctx, cancel := context.WithTimeout(context.Background(), NotifyBudget)
			defer cancel()
			if err := r.deps.Notify.Start(ctx, t); err != nil {
				r.rep.Warn("job %s: notifying %s of the start: %v", r.c.Job, notify.Redact(t.URL), err)
			}
		}()
	}
}

// notePending keeps a recorded run's outcome for notifyEnd, when the job
// has targets.
func (r *runner) notePending(result, why string, exit int, transition string) {
	if r.ntf != nil {
		r.ntf.pending = &pendingEnd{result: result, reason: why, exit: exit, transition: transition}
	}
}

// notifyEnd sends the run's outcome to the targets that want it. Run calls
// it when the tick has let go of its locks, so a slow target delays no job;
// it is bounded by NotifyBudget, and a signal (systemd stopping the unit)
// ends it at once.
func (r *runner) notifyEnd() {
	if r.ntf == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), NotifyBudget)
	defer cancel()
	go func() {
		select {
		case <-r.sigCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	// The start pings go out first: a run's end must never reach a
	// healthchecks check before its start (the check would stay
	// "started"). They are bounded by the same budget.
	started := make(chan struct{})
	go func() { r.ntf.started.Wait(); close(started) }()
	select {
	case <-started:
	case <-ctx.Done():
		return // (their own contexts end them within NotifyBudget)
	}
	p := r.ntf.pending
	if p == nil {
		return
	}
	host, _ := os.Hostname()
	e := notify.Event{Host: host, Job: r.c.Job, Result: p.result, Reason: p.reason, ExitCode: p.exit, RunID: r.runID,
		DurationSeconds: time.Since(r.started).Seconds(), Transition: p.transition, At: time.Now().UTC(), Output: []string{}}
	var want []notify.Target
	for _, t := range r.ntf.cfg.Targets {
		if t.Wants(e) {
			want = append(want, t)
		}
	}
	if len(want) == 0 {
		return
	}
	if e.Output = jobOutput(OutputLines); len(e.Output) == 0 && os.Getenv("INVOCATION_ID") != "" {
		// journald may not have read the last of the job's output yet.
		time.Sleep(250 * time.Millisecond)
		e.Output = jobOutput(OutputLines)
	}
	var wg sync.WaitGroup
	for _, t := range want {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.deps.Notify.Send(ctx, t, e); err != nil {
				r.rep.Warn("job %s: notifying %s (%s) of %s: %v", r.c.Job, notify.Redact(t.URL), t.Kind, e.Result, err)
			}
		}()
	}
	wg.Wait()
}

// jobOutput is the last n lines this unit's run wrote, from the journal
// (by the invocation id systemd gives the service; never by routing the
// job's output through tickgate). Outside systemd, or if the journal cannot
// be read, there are none.
func jobOutput(n int) []string {
	inv := os.Getenv("INVOCATION_ID")
	if inv == "" {
		return []string{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// The job's output carries the unit's syslog identifier (the helper's
	// name): tell it apart by its process, not its name — tickgate's own
	// entries come from this pid, systemd's from pid 1.
	lines, err := unitlog.Lines(ctx, inv, n, strconv.Itoa(os.Getpid()))
	if err != nil || lines == nil {
		return []string{}
	}
	return lines
}
