// Stage 4 of a tick: the command, as the job's user, with exactly its argv
// and environment, in its own process group, attempt after attempt
// (retry.go) while supervise.go watches each.

package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tickgate/tickgate/helper/execshim"
	"github.com/tickgate/tickgate/helper/jobenv"
	"github.com/tickgate/tickgate/helper/lockgroup"
	"github.com/tickgate/tickgate/helper/proc"
	"github.com/tickgate/tickgate/helper/reason"
	"github.com/tickgate/tickgate/helper/report"
	"github.com/tickgate/tickgate/helper/state"
)

// attempt is the command's attempt in progress, and what it leaves for the
// record.
type attempt struct {
	n       int              // the attempt (1 = first)
	lastWhy string           // with retries: why the attempts stopped early, for the final reason
	ctl     *control         // the control socket, while the command runs
	pre     *state.Preloaded // state.json as read while the command ran (nil: not read)
}

// execute runs the command, attempt after attempt while an attempt ends
// with a retry code and the retries allow, and records how it ended.
func (r *runner) execute(lg *lockgroup.Group) *ended {
	c := r.c
	r.loadNotify()
	for r.try.n = 1; ; r.try.n++ {
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
		if e := r.waitToRetry(end.code, startWhy); e != nil {
			return e
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
	r.try.pre = r.job.Preload()
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
			s.Run = r.stamped(state.Run{RunID: r.runID, Result: state.Running, StartedAt: &r.started, Attempt: r.attemptNo()})
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
	if r.claim.ok {
		env = append(env, "TICKGATE_FLEET_SLOT="+r.claim.slot.Format(time.RFC3339))
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
	env, err := r.childEnv()
	if err != nil {
		return nil, err
	}
	// fd 3: nothing (it held the group's pin before 0.3); fd 4: control
	return r.process(r.c.Argv, env, []uintptr{closedFD, ctl.Fd()})
}

// process builds a child that runs argv as the job's command runs: env,
// the descriptors files from fd 3 on, the job's streams, its working
// directory, its own process group, as the job's user when one is set.
func (r *runner) process(argv, env []string, files []uintptr) (*child, error) {
	c := r.c
	ch := &child{path: argv[0], argv: argv}
	if filepath.Base(ch.path) == ch.path && c.Cred == nil {
		// A bare name is looked up in the job's PATH, as the job's shell
		// would (a non-root job's shim looks it up as the job's user).
		ch.path, ch.err = lookPath(ch.path, envValue(env, "PATH"))
	}
	ch.std = [3]any{c.Stdin, c.Stdout, c.Stderr}
	ch.attr = syscall.ProcAttr{
		Dir:   c.WorkDir,
		Env:   env,
		Files: files,
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
		ch.argv = append([]string{filepath.Base(shim), execshim.Arg, "--"}, argv...)
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
