// Package runner implements `tickgate run`: the ExecStart wrapper that checks
// markers, the gate and the lock group, runs the job's argv, and records the
// outcome (state, markers, metrics, journal).
package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tickgate/tickgate/helper/admit"
	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/execshim"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/gate"
	"github.com/tickgate/tickgate/helper/jobenv"
	"github.com/tickgate/tickgate/helper/lockgroup"
	"github.com/tickgate/tickgate/helper/metrics"
	"github.com/tickgate/tickgate/helper/proc"
	"github.com/tickgate/tickgate/helper/reason"
	"github.com/tickgate/tickgate/helper/report"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/sysprog"
)

// Outcome is how the tick ended.
type Outcome struct {
	Result   string
	Reason   string
	ExitCode int
}

type runner struct {
	c       Config
	deps    Deps
	store   state.Store
	job     *state.Job
	rep     *report.Reporter
	runID   string
	started time.Time
	sigCh   chan os.Signal
	// stopWatch ends the signal watch of the record in progress.
	stopWatch context.CancelFunc

	links // the fleet database and lock, the job's notification targets

	fleetSkipped bool             // the fleet was unusable and --gate-fail open let the tick go on
	slot         time.Time        // a floating singleton's slot (zero: not one)
	claimed      bool             // the slot is this tick's
	attempt      int              // the command's attempt in this tick (1 = first)
	nextDue      *time.Time       // the schedule's next elapse as the tick started (nil: no schedule)
	elapses      []time.Time      // the schedule's coming elapses (cached in state.json)
	interval     float64          // the longest gap between them, in seconds
	nextErr      error            // why nextDue is unknown
	due          *time.Time       // when this tick was due (nil: not known, or a start off the schedule)
	ctl          *control         // the control socket, while the command runs
	backoff      *backoff.B       // the lock group's back-off as last checked (nil: none)
	lastWhy      string           // with retries: why the attempts stopped early, for the final reason
	gate         *gate.Gate       // the gate as last read for admission (nil: not read, or unusable)
	gateRead     bool             // gate is set (a marker may decide before the gate is read)
	pre          *state.Preloaded // state.json as read while the command ran (nil: not read)
	dueOnce      sync.Once        // whenDue, run once (ensureDue)
}

// Run performs one tick. The returned error is non-nil only when tickgate
// itself failed (state not writable, ...); the outcome's ExitCode is what
// `tickgate run` exits with otherwise. Run subscribes to SIGTERM, SIGINT and
// SIGHUP itself: during a tick its channel is the one source of signals (it
// ends a lock wait, is forwarded to the command, ends a stuck record).
func Run(c Config, d Deps) (Outcome, error) {
	r := &runner{
		c:       c,
		deps:    d,
		store:   state.Store{Dir: c.StateDir, Owners: c.Owners},
		rep:     report.New(c.Stderr),
		runID:   newRunID(),
		started: time.Now().UTC(),
		sigCh:   make(chan os.Signal, 4),
	}
	signal.Notify(r.sigCh, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(r.sigCh)
	// No program tickgate did not write (systemd-analyze, journalctl) runs
	// with the supervisor's capabilities.
	sysprog.BeforeRun = clearAmbient
	// Nothing the helper was handed beyond its standard streams reaches the
	// command (or any program it starts): the command gets 0-2 and the
	// control socket, exactly.
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)

	out, err := r.tick()
	r.notifyEnd() // the locks are let go: a slow target delays no job
	return out, err
}

// tick is Run's work, holding what it takes until it returns.
func (r *runner) tick() (Outcome, error) {
	c := r.c
	job, err := r.store.Job(c.Job, true)
	if err != nil {
		return Outcome{}, fmt.Errorf("job %s: state dir: %w", c.Job, err)
	}
	defer job.Close()
	r.job = job
	defer r.closeFleet()

	if c.StartDeadline > 0 || (c.Fleet != nil && c.Fleet.Singleton) {
		r.ensureDue() // decided on before the command; else while it runs
	}

	// 1. May the job start? One ordered list of checks (package admit):
	// its markers (a drained or halted job stays stopped until an operator
	// clears it), the host gate, the fleet gate, the lock group's back-off,
	// the start deadline.
	if out, stop, err := r.admission(true); stop {
		return out, err
	}

	// A floating singleton's slot is named as the tick starts, before any
	// lock wait can make it late.
	if c.Fleet != nil && c.Fleet.Singleton {
		if out, stop, err := r.slotOf(); stop {
			return out, err
		}
	}

	// 2. Lock group: on this host, then fleet-wide.
	if c.LockWait > 0 {
		report.Status("waiting for lock %s (up to %s)", c.Lock, c.LockWait)
	}
	lg, sig, err := r.acquire()
	switch {
	case sig != nil:
		return r.finishInterrupted(sig, false, 0)
	case errors.Is(err, lockgroup.ErrBusy):
		return r.skip(exitcode.Skipped, reason.F(reason.LockBusy, "%s", lockgroup.Detail(err, c.Lock)))
	case err != nil:
		return Outcome{}, fmt.Errorf("job %s: %w", c.Job, err)
	}
	defer lg.Close()
	if c.Fleet != nil && c.Fleet.LockScope {
		if out, stop, err := r.takeFleetLock(); stop {
			return out, err
		}
		defer r.releaseFleetLock()
	}

	// 3. Ask again now that the lock is held. Drain counts a held group lock
	// as a running job, so a closure (or a halt) that landed after the first
	// check either is seen here or drain waits for this run. Only in that
	// race does a skip hold the lock, for the moment of the re-check. The
	// deadline is asked here too: a lock wait may have made the run late.
	if c.StartDeadline > 0 && r.nextErr != nil {
		r.rep.Warn("job %s: --start-deadline not applied: %v", c.Job, r.nextErr)
	}
	if out, stop, err := r.admission(false); stop {
		return out, err
	}
	if sig := r.pendingSignal(); sig != nil {
		return r.finishInterrupted(sig, false, 0)
	}
	// The last step before the command: the slot is claimed only by a tick
	// that will run it.
	if !r.slot.IsZero() {
		if out, stop, err := r.claimSlot(); stop {
			return out, err
		}
	}

	// 4. Run the command. A tick with no lease to renew holds no fleet
	// connection while it runs.
	r.fleetIdle()
	return r.execute(lg)
}

// subject is the tick as admission asks about it; due is when the tick was
// due (nil for a retry, or a check from inside the running job: those are
// not starts on the schedule).
func (r *runner) subject(due *time.Time) admit.Subject {
	c := r.c
	s := admit.Subject{Job: c.Job, Dir: r.job, GatePath: c.GatePath, Lock: c.Lock, LockDir: c.LockDir, Owners: c.Owners,
		Policy: admit.Policy{ExpectedRuntime: c.ExpectedRuntime, GateFailOpen: c.GateFailOpen},
		Due:    due, StartDeadline: c.StartDeadline}
	if c.Fleet != nil {
		s.Fleet, s.FleetLock, s.Singleton = r.fleetView(), c.Fleet.LockScope, c.Fleet.Singleton
	}
	return s
}

// admission records a skip when the job may not start (stop=true); first
// says to print the warnings --gate-fail open let it go past (once per
// tick).
func (r *runner) admission(first bool) (Outcome, bool, error) {
	var due *time.Time
	if r.c.StartDeadline > 0 {
		r.ensureDue()
		due = r.due
	}
	d := admit.Decide(context.Background(), r.subject(due), time.Now())
	r.noteDecision(d)
	if d.Allowed {
		if first {
			for _, w := range d.Warnings {
				r.rep.Warn("job %s: %s", r.c.Job, w)
			}
		}
		return Outcome{}, false, nil
	}
	out, err := r.skip(d.Code, d.Reason)
	return out, true, err
}

// admissionRecord is the tick's admission flags as state.json keeps them.
func (r *runner) admissionRecord() *state.Admission {
	c := r.c
	a := &state.Admission{ExpectedRuntime: c.ExpectedRuntime.Seconds(), GateFailOpen: c.GateFailOpen}
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
		r.gate, r.gateRead = d.Gate, true
	}
	r.backoff = d.Backoff
	if d.FleetDown {
		r.fleetSkipped = true
	}
}

// gateClosedSince is the metric's value: from the gate the tick was last
// admitted (or stopped) by; read here only if no admission got to it (a
// marker stopped the tick first).
func (r *runner) gateClosedSince(now time.Time) time.Time {
	if !r.gateRead && r.c.GatePath != "" {
		r.gate, _, _ = gate.Load(r.c.GatePath)
		r.gateRead = true
	}
	return metrics.GateClosedSince(r.gate, r.c.Job, now)
}

// acquire takes the lock group, waiting up to --lock-wait; a signal during
// the wait ends it and is returned.
func (r *runner) acquire() (*lockgroup.Group, os.Signal, error) {
	if r.c.LockWait <= 0 {
		// No wait: nothing for a signal to end (a goroutine less per tick).
		lg, err := lockgroup.Acquire(context.Background(), r.c.LockDir, r.c.Lock, 0, r.c.Owners)
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
	lg, err := lockgroup.Acquire(ctx, r.c.LockDir, r.c.Lock, r.c.LockWait, r.c.Owners)
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

// childEnv is the command's environment: the helper's own (what its unit
// gives every job: INVOCATION_ID, JOURNAL_STREAM, LANG, PATH), then the
// job's own variables from its environment file, then tickgate's TICKGATE_*
// for this run, each set later winning. The job's variables never reach the
// helper's own environment.
func (r *runner) childEnv() ([]string, error) {
	drop := map[string]bool{"NOTIFY_SOCKET": true, "TICKGATE_JOB": true, "TICKGATE_LOCK": true,
		"TICKGATE_RUN_ID": true, "TICKGATE_STATE_DIR": true, "TICKGATE_STATE_ROOT": true, "TICKGATE_GATE": true,
		"TICKGATE_LOCK_FD": true, "TICKGATE_DATA_DIR": true, "TICKGATE_DATA_ROOT": true, "TICKGATE_GATE_FAIL": true,
		"TICKGATE_FENCE": true, "TICKGATE_FLEET_SLOT": true, "TICKGATE_CONTROL_FD": true, "TICKGATE_FLEET_DSN_FILE": true,
		"TICKGATE_FLEET_ADMIN_DSN_FILE": true, "TICKGATE_ENV_DIR": true, "TICKGATE_NOTIFY_DIR": true, "WATCHDOG_USEC": true, "WATCHDOG_PID": true}
	if r.c.Cred != nil {
		for _, k := range []string{"HOME", "USER", "LOGNAME"} {
			drop[k] = true
		}
	}
	env := make([]string, 0, len(r.c.Env)+10)
	for _, kv := range r.c.Env {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	if r.c.EnvFile != "" {
		own, err := jobenv.Load(r.c.EnvFile, r.c.Owners)
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", r.c.Job, err)
		}
		env = append(env, own...)
	}
	data := r.dataDir()
	env = append(env,
		"TICKGATE_JOB="+r.c.Job,
		"TICKGATE_LOCK="+r.c.Lock,
		"TICKGATE_RUN_ID="+r.runID,
		"TICKGATE_DATA_DIR="+data,
		"TICKGATE_STATE_DIR="+data, // the name before 0.2: the job's own writable dir
		"TICKGATE_STATE_ROOT="+r.c.StateDir,
		"TICKGATE_GATE="+r.c.GatePath,
		fmt.Sprintf("TICKGATE_CONTROL_FD=%d", ControlFD),
		"TICKGATE_GATE_FAIL="+map[bool]string{false: "closed", true: "open"}[r.c.GateFailOpen],
	)
	if f := r.fence(); f != 0 {
		env = append(env, fmt.Sprintf("TICKGATE_FENCE=%d", f))
	}
	if r.claimed {
		env = append(env, "TICKGATE_FLEET_SLOT="+r.slot.Format(time.RFC3339))
	}
	if cr := r.c.Cred; cr != nil {
		env = append(env, "HOME="+cr.Home, "USER="+cr.Name, "LOGNAME="+cr.Name)
	}
	return dedupEnv(env), nil
}

// dataDir is the job's own writable directory (tickgate never reads it).
func (r *runner) dataDir() string {
	if r.c.DataDir == "" {
		return ""
	}
	return filepath.Join(r.c.DataDir, r.c.Job)
}

// child is the command as it is to be started.
type child struct {
	path string   // the program (a bare name found in the job's PATH)
	argv []string // exactly the job's, or the shim's before it
	std  [3]any   // its standard streams (attr.Files has the rest)
	attr syscall.ProcAttr
	err  error // why it cannot start (the lookup failed)
}

// closedFD, in ProcAttr.Files, closes that descriptor in the child.
const closedFD = ^uintptr(0)

// command builds the child: the exact argv, in its own process group, with
// the control socket on fd 4 and nothing on fd 3 (the lock group's lock
// stays with the helper: package lockgroup), as the job's user when one is
// set.
//
// It is started with syscall.ForkExec, not os/exec: os.StartProcess first
// checks, once per process, that pidfds work, by forking a child that exits
// at once (Go 1.23+) — a second fork in every tick. The supervisor needs no
// pidfd: it is the child subreaper of the command's whole tree and keeps
// the command unreaped while it signals its process group (supervise.go).
func (r *runner) command(ctl *os.File) (*child, error) {
	c := r.c
	env, err := r.childEnv()
	if err != nil {
		return nil, err
	}
	ch := &child{path: c.Argv[0], argv: c.Argv}
	if filepath.Base(ch.path) == ch.path && c.Cred == nil {
		// A bare name is looked up in the job's PATH, as the job's shell
		// would (a non-root job's shim looks it up as the job's user).
		ch.path, ch.err = lookPath(ch.path, envValue(env, "PATH"))
	}
	ch.std = [3]any{c.Stdin, c.Stdout, c.Stderr}
	ch.attr = syscall.ProcAttr{
		Dir: c.WorkDir,
		Env: env,
		// fd 3: nothing (it held the group's pin before 0.3); fd 4: control
		Files: []uintptr{closedFD, ctl.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	if r.fleetLockHeld() {
		// The fleet lock lives in this process' connection: if tickgate is
		// SIGKILLed, the job must not run on without it. (The forking
		// thread must outlive the child: runOnce locks it.)
		ch.attr.Sys.Pdeathsig = syscall.SIGKILL
	}
	cr := c.Cred
	if cr == nil {
		if d := r.dataDir(); d != "" {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return nil, fmt.Errorf("job %s: data dir: %w", c.Job, err)
			}
		}
		return ch, nil
	}
	ch.attr.Sys.Credential = &syscall.Credential{Uid: cr.UID, Gid: cr.GID, Groups: cr.Groups}
	if os.Geteuid() != 0 {
		// The supervisor account keeps its capabilities across setuid: the
		// child must start with none (no ambient set) and shed the rest in
		// the execshim before the job's program runs.
		if err := clearAmbient(); err != nil {
			return nil, fmt.Errorf("job %s: %w", c.Job, err)
		}
		shim, skipped := execshim.Program(cr.SelfExecutable)
		if skipped != nil {
			r.rep.Warn("job %s: not using %s: %v; tickgate runs itself as the shim", c.Job, execshim.Name, skipped)
		}
		// The shim looks the job's program up, as the job's user.
		ch.path, ch.err = shim, nil
		ch.argv = append([]string{filepath.Base(shim), execshim.Arg, "--"}, c.Argv...)
	}
	return ch, nil
}

// start forks and execs ch; its pid leads a process group of its own.
func (ch *child) start() (int, error) {
	if ch.err != nil {
		return 0, ch.err
	}
	std, keep, err := stdFiles(ch.std)
	defer func() {
		for _, f := range keep {
			f.Close()
		}
	}()
	if err != nil {
		return 0, err
	}
	attr := ch.attr
	attr.Files = append(std, ch.attr.Files...)
	pid, err := syscall.ForkExec(ch.path, ch.argv, &attr)
	if err != nil {
		return 0, &os.PathError{Op: "fork/exec", Path: ch.path, Err: err}
	}
	return pid, nil
}

// stdFiles are the descriptors the command inherits as 0, 1 and 2: the
// helper's own (systemd's journal stream, or a terminal); /dev/null for a
// missing one, as os/exec does (returned in keep, to close once started).
func stdFiles(streams [3]any) (fds []uintptr, keep []*os.File, err error) {
	fds = make([]uintptr, 3, 5)
	for i, s := range streams {
		switch f := s.(type) {
		case *os.File:
			if f == nil {
				return nil, keep, fmt.Errorf("standard stream %d is a nil file", i)
			}
			fds[i] = f.Fd()
		case nil:
			null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				return nil, keep, err
			}
			keep = append(keep, null)
			fds[i] = null.Fd()
		default:
			return nil, keep, fmt.Errorf("standard stream %d is a %T, not a file the command can inherit", i, s)
		}
	}
	return fds, keep, nil
}

// dedupEnv keeps the last of each variable set twice (the tick's own
// TICKGATE_* values over inherited ones), as os/exec does.
func dedupEnv(env []string) []string {
	seen := make(map[string]bool, len(env))
	out := make([]string, 0, len(env))
	for i := len(env) - 1; i >= 0; i-- {
		k, _, _ := strings.Cut(env[i], "=")
		if !seen[k] {
			seen[k] = true
			out = append(out, env[i])
		}
	}
	slices.Reverse(out)
	return out
}

func (r *runner) execute(lg *lockgroup.Group) (Outcome, error) {
	c := r.c
	r.loadNotify()
	for r.attempt = 1; ; r.attempt++ {
		end, startCode, startWhy := r.runOnce(lg)
		switch {
		case startWhy != "":
			if !r.retryable(startCode) {
				return r.finishRun(startCode, startWhy, false)
			}
			end.code = startCode
		case end.lost != nil:
			return r.finishLost(end.lost, end.code)
		case end.sig != nil:
			return r.finishInterrupted(end.sig, true, end.code)
		case end.timedOut:
			return r.finishRun(end.code, reason.F(reason.Timeout, "stopped after %s", c.Timeout), true)
		case !r.retryable(end.code):
			return r.finishRun(end.code, "", false)
		}
		// A retry code with attempts left: wait, then try again, unless the
		// gate, a pause, a marker or a signal says stop meanwhile.
		if out, stop, err := r.waitToRetry(end.code, startWhy); stop {
			return out, err
		}
	}
}

// runOnce starts the command and supervises it. A command that cannot start
// returns its code (126/127) and why.
func (r *runner) runOnce(lg *lockgroup.Group) (ending, int, string) {
	c := r.c
	ctl, err := r.openControl()
	if err != nil {
		return ending{}, 126, err.Error()
	}
	defer r.closeControl()
	ch, err := r.command(ctl)
	if err != nil {
		ctl.Close()
		return ending{}, 126, err.Error()
	}
	if r.fleetLockHeld() {
		runtime.LockOSThread() // Pdeathsig follows the thread that forked the child
		defer runtime.UnlockOSThread()
	}
	if err := subreaper(); err != nil {
		ctl.Close()
		return ending{}, 126, fmt.Sprintf("cannot keep the command's process tree: %v", err)
	}
	select {
	case ev := <-r.leaseEvents():
		// The fleet lock went before this attempt could start.
		ctl.Close()
		return ending{code: 126, lost: ev.Err}, 0, ""
	default:
	}
	r.notifyStart()
	pid, err := ch.start()
	ctl.Close() // the child's end stays with the child
	if err != nil {
		code := 126
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			code = 127
		}
		return ending{}, code, fmt.Sprintf("cannot start %q: %v", c.Argv[0], err)
	}
	// Who holds the lock group, in its lock file: if tickgate is killed, or
	// the command leaves processes behind, the next holder waits for them.
	lg.Started(c.Job, pid)
	// While the command runs, before waiting for it, and in this goroutine
	// (a goroutine started here costs a tick an OS thread's start-up): read
	// state.json, so that recording the outcome decodes nothing if the file
	// did not change meanwhile; and work out when the tick was due. A signal
	// meanwhile waits in sigCh for supervise.
	r.pre = r.job.Preload()
	r.ensureDue()

	// Record "running" while the command runs, off the critical path. A
	// command that ends within RunningRecordDelay is never recorded as
	// running (nor is a goroutine started for it): its outcome is the
	// tick's one durable write. (Drain and status see it running meanwhile
	// by its held lock group.)
	recorded := make(chan error, 1)
	runningCtx, stopRecording := context.WithCancel(context.Background())
	defer stopRecording()
	runningTimer := time.AfterFunc(RunningRecordDelay, func() {
		if runningCtx.Err() != nil {
			recorded <- nil
			return
		}
		st, err := r.job.Update(runningCtx, func(s *state.State) {
			s.Lock = c.Lock
			s.Run = state.Run{RunID: r.runID, Result: state.Running, StartedAt: &r.started, Attempt: r.attemptNo()}
			s.PID, s.PIDStart = pid, proc.StartTime(pid)
			s.HelperPID, s.HelperPIDStart = os.Getpid(), proc.StartTime(os.Getpid())
			s.Fence, s.Slot = r.fence(), r.slotClaimed()
			r.noteSchedule(s)
		}, state.Hooks{})
		if err == nil {
			r.publish(st)
		}
		recorded <- err
	})
	report.Status("running %s pid %d (lock %s)", c.Job, pid, c.Lock)

	end := r.supervise(pid)
	if end.leftBehind {
		lg.LeftBehind()
	}
	stopRecording() // the run is over: its "running" record no longer matters
	if !runningTimer.Stop() {
		// It fired: wait for the record it started to end.
		if err := <-recorded; err != nil && runningCtx.Err() == nil {
			r.rep.Warn("job %s: recording the running state: %v", c.Job, err)
		}
	}
	return end, 0, ""
}

// finishRun classifies the child's exit code and records it. A non-empty
// why explains a failure the code alone does not (cannot start, timeout).
func (r *runner) finishRun(code int, why string, timedOut bool) (Outcome, error) {
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
	if r.c.Retries > 0 && r.attempt > 1 && t.result == state.Success {
		t.reason = fmt.Sprintf("ok on attempt %d of %d", r.attempt, r.c.Retries+1)
	}
	if t.result == state.Failed && r.c.Retries > 0 && (r.c.Retry[code] || r.attempt > 1) {
		t.reason += fmt.Sprintf(" (attempt %d of %d", r.attempt, r.c.Retries+1)
		if r.lastWhy != "" {
			t.reason += "; no more attempts: " + r.lastWhy
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
	run := state.Run{RunID: r.runID, Result: result, Reason: reason, StartedAt: &r.started,
		FinishedAt: &now, DurationSeconds: now.Sub(r.started).Seconds(), ExitCode: &code, Fence: r.fence(), Slot: r.slotClaimed(), Attempt: r.attemptNo()}
	endTick(s, run)
	s.LastRun = &run
	s.AddHistory(run, r.c.History)
}

// slotClaimed is the floating singleton's slot this run claimed (nil: none).
func (r *runner) slotClaimed() *time.Time {
	if !r.claimed {
		return nil
	}
	s := r.slot
	return &s
}

// finishLost records a run stopped because its fleet lock went: like an
// interruption (it does not move the breaker), naming the lost lock.
func (r *runner) finishLost(lost error, childCode int) (Outcome, error) {
	exit := 128 + int(syscall.SIGTERM)
	t := tick{result: state.Interrupted, reason: reason.F(reason.FleetLockLost, "%v; the job's process group was stopped", lost)}
	now := time.Now().UTC()
	return r.record(t, exit, childCode, func(s *state.State, t *tick) {
		s.RunsTotal++
		r.setRun(s, t.result, t.reason, now, childCode)
	})
}

// endTick makes run the latest tick; nothing of this job runs any more.
func endTick(s *state.State, run state.Run) {
	s.Run = run
	s.PID, s.PIDStart, s.HelperPID, s.HelperPIDStart = 0, 0, 0, 0
}

// finishInterrupted records a tick stopped by a signal to the helper. ran says
// the command had started; childCode is then its exit code.
func (r *runner) finishInterrupted(sig os.Signal, ran bool, childCode int) (Outcome, error) {
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
			endTick(s, state.Run{RunID: r.runID, Result: t.result, Reason: t.reason, StartedAt: &r.started, FinishedAt: &now, ExitCode: &exit})
		}
	})
}

// skip records a tick that did not run the command.
func (r *runner) skip(code int, why string) (Outcome, error) {
	now := time.Now().UTC()
	return r.record(tick{result: state.Skipped, reason: why}, code, code, func(s *state.State, t *tick) {
		s.SkipsTotal++
		s.LastSkip = &state.Skip{At: now, Reason: t.reason}
		if s.IsRunning() {
			return // another run of this job is in progress: keep its record
		}
		c := code
		endTick(s, state.Run{RunID: r.runID, Result: t.result, Reason: t.reason, StartedAt: &now, FinishedAt: &now, ExitCode: &c})
	})
}

// RunningRecordDelay is how long a command runs before its "running" record
// (pid, start time) is written to state.json.
var RunningRecordDelay = 50 * time.Millisecond

// tick is a tick's outcome: its result, reason, and the marker it writes.
type tick struct{ result, reason, marker string }

// MarkerTries is how often a done/halted marker write is tried before the
// tick fails loudly (exit 70): a marker that is not written means the job
// would run again at its next tick.
var MarkerTries = []time.Duration{0, 100 * time.Millisecond, 400 * time.Millisecond}

// record applies fn to the job's state under its state lock and writes, in
// this order: the marker (if the tick has one), then state.json and the
// metrics file together. It then reports the tick. fn may change t (the
// breaker turns a failure into a halt).
func (r *runner) record(t tick, exit, childCode int, fn func(*state.State, *tick)) (Outcome, error) {
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
			if r.backoff != nil {
				until = r.backoff.Until
			}
			now := time.Now()
			if err := metrics.WriteJob(c.MetricsDir, r.job, st, now, until, r.gateClosedSince(now), c.Owners); err != nil {
				return fmt.Errorf("write metrics: %w", err)
			}
			return nil
		}
	}
	hooks.Pre, r.pre = r.pre, nil
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
	out := Outcome{Result: t.result, Reason: t.reason, ExitCode: exit}
	if err != nil {
		return out, fmt.Errorf("job %s: recording the outcome: %w", c.Job, err)
	}
	return out, nil
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

var (
	ambientOnce sync.Once
	ambientErr  error
)

// clearAmbient clears the supervisor's ambient capabilities, once: every
// program it starts (the job's shim, a system program) starts with none.
// Root holds none to clear.
func clearAmbient() error {
	ambientOnce.Do(func() {
		if os.Geteuid() != 0 {
			ambientErr = execshim.ClearAmbient()
		}
	})
	return ambientErr
}

// newRunID names a run: 64 random bits, unique rather than secret, so from
// math/rand/v2 (ChaCha8, seeded by the runtime from the kernel's randomness
// for each process). crypto/rand's first read costs a tick 40-100 µs
// (the getrandom vDSO maps its state then); this costs nothing.
func newRunID() string {
	return fmt.Sprintf("%016x", rand.Uint64())
}

// envValue is the value of name in env (the last one set), "" if none.
func envValue(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v
		}
	}
	return ""
}

// lookPath finds a bare program name in the directories of path (the
// job's PATH, not the helper's), as exec.LookPath does in its own: the
// first regular file there that is executable. An empty PATH means the
// directories execvp(3) searches.
func lookPath(name, path string) (string, error) {
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return name, &exec.Error{Name: name, Err: exec.ErrNotFound}
}
