// Package runner implements `tickgate run`: the ExecStart wrapper that checks
// markers, the gate and the lock group, runs the job's argv, and records the
// outcome (state, markers, metrics, journal).
package runner

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/lockgroup"
	"github.com/tickgate/tickgate/helper/reason"
	"github.com/tickgate/tickgate/helper/report"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/sysprog"
	"golang.org/x/sys/unix"
)

// Outcome is how the tick ended.
type Outcome struct {
	Result   string
	Reason   string
	ExitCode int
}

// ended is how a tick ended: its outcome, and tickgate's own failure if it
// could not do its part (state not writable). Each stage of a tick returns
// one to end it there, or nil to carry on.
type ended struct {
	out Outcome
	err error
}

// runner is one tick. What its stages learn and pass on is grouped by
// stage, each group in the file of the stage that fills it.
type runner struct {
	c       Config
	deps    Deps
	store   state.Store
	job     *state.Job // the job's trusted state directory, open for the tick
	rep     *report.Reporter
	runID   string
	started time.Time
	sigCh   chan os.Signal // the one source of signals during the tick
	// stopWatch ends the signal watch of the record in progress.
	stopWatch context.CancelFunc

	links                // fleet.go, notify.go: the fleet database and lock, the job's notification targets
	sched schedule       // schedule.go: when the tick was due, the schedule's coming elapses
	seen  seen           // admit.go: what admission read last (the gate, the back-off, the fleet)
	claim slotClaim      // slot.go: a floating singleton's slot
	req   *state.Request // an operator's start (tickgate start), taken as the tick began; nil: the timer's
	try   attempt        // child.go, retry.go: the command's attempt in progress
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

	e := r.tick()
	r.notifyEnd() // the locks are let go: a slow target delays no job
	return e.out, e.err
}

// tick is Run's work, holding what it takes until it returns.
func (r *runner) tick() *ended {
	c := r.c
	job, err := r.store.Job(c.Job, true)
	if err != nil {
		return &ended{err: fmt.Errorf("job %s: state dir: %w", c.Job, err)}
	}
	defer job.Close()
	r.job = job
	defer r.closeFleet()
	r.takeRequest()

	if c.StartDeadline > 0 || (c.Fleet != nil && c.Fleet.Singleton) {
		r.ensureDue() // decided on before the command; else while it runs
	}

	// 1. May the job start? One ordered list of checks (package admit):
	// its markers (a drained or halted job stays stopped until an operator
	// clears it), the host gate, the fleet gate, the lock group's back-off,
	// the start deadline.
	if e := r.admission(true); e != nil {
		return e
	}

	// A floating singleton's slot is named as the tick starts, before any
	// lock wait can make it late.
	// (An operator's start, tickgate start, is not a slot: the timer's
	// runs go on as scheduled; start --fleet runs it on one host.)
	if c.Fleet != nil && c.Fleet.Singleton && r.req == nil {
		if e := r.slotOf(); e != nil {
			return e
		}
	}

	// 2. Its preconditions (requires:): check commands, dependencies.
	if e := r.preconditions(); e != nil {
		return e
	}
	checked := time.Now()

	// 3. Lock group: on this host, then fleet-wide.
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
		return &ended{err: fmt.Errorf("job %s: %w", c.Job, err)}
	}
	defer lg.Close()
	if c.Fleet != nil && c.Fleet.LockScope {
		if e := r.takeFleetLock(); e != nil {
			return e
		}
		defer r.releaseFleetLock()
	}

	// 4. Ask again now that the lock is held. Drain counts a held group lock
	// as a running job, so a closure (or a halt) that landed after the first
	// check either is seen here or drain waits for this run. Only in that
	// race does a skip hold the lock, for the moment of the re-check. The
	// deadline is asked here too: a lock wait may have made the run late.
	if c.StartDeadline > 0 && r.sched.nextErr != nil {
		r.rep.Warn("job %s: --start-deadline not applied: %v", c.Job, r.sched.nextErr)
	}
	if e := r.admission(false); e != nil {
		return e
	}
	// What held after a lock wait may not hold any more.
	if len(c.Requires) > 0 && time.Since(checked) >= RecheckAfter {
		if e := r.preconditions(); e != nil {
			return e
		}
	}
	if sig := r.pendingSignal(); sig != nil {
		return r.finishInterrupted(sig, false, 0)
	}
	// The last step before the command: the slot is claimed only by a tick
	// that will run it.
	if !r.claim.slot.IsZero() {
		if e := r.claimSlot(); e != nil {
			return e
		}
	}

	// 5. Run the command. A tick with no lease to renew holds no fleet
	// connection while it runs.
	r.fleetIdle()
	return r.execute(lg)
}

// RecheckAfter is how long a lock wait must have lasted for the
// preconditions to be checked again once the lock is held.
var RecheckAfter = time.Second

// newRunID names a run: 64 random bits, unique rather than secret, so from
// math/rand/v2 (ChaCha8, seeded by the runtime from the kernel's randomness
// for each process). crypto/rand's first read costs a tick 40-100 µs
// (the getrandom vDSO maps its state then); this costs nothing.
func newRunID() string {
	return fmt.Sprintf("%016x", rand.Uint64())
}
