package runner

import (
	"os"
	"syscall"
	"time"

	"github.com/tickgate/tickgate/helper/report"
)

// ending is how a supervised command ended.
type ending struct {
	code     int       // its exit code (128+N for signal N)
	sig      os.Signal // the signal that stopped it, forwarded from the helper
	timedOut bool      // stopped at --timeout
	lost     error     // its fleet lock went, so it was stopped
}

// supervise waits for the started command (pid leads its process group).
// Signals to the helper are forwarded to the group; at --timeout the group
// gets SIGTERM; --kill-after after either, SIGKILL. Stragglers of a stopped
// run (background jobs that ignore SIGINT would keep the pin) get the rest
// of that grace, then SIGKILL.
func (r *runner) supervise(pid int) ending {
	c := r.c
	waitCh := make(chan reaped, 1)
	go func() { waitCh <- reap(pid) }()

	var timeoutC, killC <-chan time.Time
	if c.Timeout > 0 {
		t := time.NewTimer(c.Timeout)
		defer t.Stop()
		timeoutC = t.C
	}
	lost, stopWatch := r.watchFleetLock()
	defer stopWatch()
	var end ending
	stop := func(sig syscall.Signal) {
		_ = syscall.Kill(-pid, sig)
		if killC == nil {
			killC = time.After(c.KillAfter)
		}
	}
	for {
		select {
		case w := <-waitCh:
			end.code = w.exitCode()
			if end.sig != nil || end.timedOut {
				killStragglers(pid, killC)
			}
			return end
		case s := <-r.sigCh:
			if end.sig == nil {
				end.sig = s
			}
			report.Status("stopping %s pid %d: %s", c.Job, pid, s)
			stop(s.(syscall.Signal))
		case err, ok := <-lost:
			lost = nil
			if ok && end.lost == nil && end.sig == nil {
				end.lost = err
				report.Status("%v: stopping %s pid %d", err, c.Job, pid)
				stop(syscall.SIGTERM)
			}
		case <-timeoutC:
			end.timedOut = true
			report.Status("timeout: stopping %s pid %d", c.Job, pid)
			stop(syscall.SIGTERM)
		case <-killC:
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			killC = nil
		}
	}
}

// killStragglers waits for the process group to empty until killC fires,
// then SIGKILLs what is left of it.
func killStragglers(pgid int, killC <-chan time.Time) {
	if killC == nil {
		return // the group has already been SIGKILLed
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for syscall.Kill(-pgid, 0) == nil {
		select {
		case <-killC:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		case <-tick.C:
		}
	}
}

// reaped is how wait4 saw the command end.
type reaped struct {
	ws  syscall.WaitStatus
	err error // wait4 failed: how it ended is unknown
}

// reap waits for the command to end and reaps it.
func reap(pid int) reaped {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			return reaped{ws, err}
		}
	}
}

// exitCode is the command's exit code: 128+N when signal N ended it, 126
// when it is unknown.
func (w reaped) exitCode() int {
	switch {
	case w.err != nil:
		return 126
	case w.ws.Signaled():
		return 128 + int(w.ws.Signal())
	}
	return w.ws.ExitStatus()
}
