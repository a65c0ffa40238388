package runner

import (
	"os"
	"os/exec"
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
func (r *runner) supervise(cmd *exec.Cmd, pid int) ending {
	c := r.c
	waitCh := make(chan error, 1)
	go func() { waitCh <- cmd.Wait() }()

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
		case err := <-waitCh:
			end.code = exitCodeOf(cmd.ProcessState, err)
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

func exitCodeOf(ps *os.ProcessState, err error) int {
	if ps == nil {
		return 126
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
