package runner

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tickgate/tickgate/helper/report"
)

// ending is how a supervised command ended.
type ending struct {
	code     int       // its exit code (128+N for signal N)
	sig      os.Signal // the signal that stopped it, forwarded from the helper
	timedOut bool      // stopped at --timeout
	lost     error     // its fleet lock went, so it was stopped
	// leftBehind: the command ended (not stopped) and processes it started
	// still run; they keep its lock group busy (lockgroup.LeftBehind).
	leftBehind bool
}

// The command's process tree, as its supervisor keeps it:
//   - tickgate is the child subreaper of its own children
//     (PR_SET_CHILD_SUBREAPER): a process of the command's tree whose parent
//     exits is reparented to tickgate, not to init, so the tree is empty
//     exactly when tickgate has no child of the command left, whatever
//     process groups or sessions the job made;
//   - the command (its process group's leader) is waited for without being
//     reaped (waitid WNOWAIT) until tickgate is done signalling its group:
//     an unreaped zombie's pid, the group's id, cannot be recycled, so a
//     signal to the group never reaches another process;
//   - a straggler is signalled by its pid only while it is tickgate's
//     unreaped child, for the same reason.

// subreaper makes this process the child subreaper of its descendants.
func subreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// supervise waits for the started command (pid leads its process group).
// Signals to the helper are forwarded to the group; at --timeout the group
// gets SIGTERM; --kill-after after either, SIGKILL. Stragglers of a stopped
// run (background processes that ignore SIGTERM) get the rest of that
// grace, then SIGKILL, the whole tree.
func (r *runner) supervise(pid int) ending {
	c := r.c
	waitCh := make(chan exited, 1)
	go func() { waitCh <- waitExit(pid) }()

	var timeoutC, killC <-chan time.Time
	if c.Timeout > 0 {
		t := time.NewTimer(c.Timeout)
		defer t.Stop()
		timeoutC = t.C
	}
	lease := r.leaseEvents() // nil without a fleet lock
	var end ending
	stop := func(sig syscall.Signal) {
		_ = syscall.Kill(-pid, sig)
		if killC == nil {
			killC = time.After(c.KillAfter)
		}
	}
	killed := false // the tree got SIGKILL at --kill-after
	for {
		select {
		case w := <-waitCh:
			end.code = w.exitCode()
			stopped := end.sig != nil || end.timedOut || end.lost != nil
			left, known := liveChildren(pid)
			switch {
			case !known:
				// No /proc/self/task/*/children (a kernel without
				// CONFIG_PROC_CHILDREN): the process group alone, with
				// the leader reaped first, as before.
				reap(pid)
				if stopped && !killed {
					waitGroup(pid, killC)
				}
				return end
			case stopped && !killed:
				killStragglers(pid, killC)
			case !stopped:
				end.leftBehind = len(left) > 0
			}
			reap(pid)
			return end
		case s := <-r.sigCh:
			if end.sig == nil {
				end.sig = s
			}
			report.Status("stopping %s pid %d: %s", c.Job, pid, s)
			stop(s.(syscall.Signal))
		case ev := <-lease:
			if end.lost == nil {
				end.lost = ev.Err
			}
			if ev.Hard {
				// The lease is lost, or its end is near: another host may
				// take the group. No grace: the whole tree dies now.
				report.Status("%v: killing %s pid %d and its tree", ev.Err, c.Job, pid)
				killTree(pid)
				killC, killed = nil, true
				lease = nil
				continue
			}
			if end.sig == nil {
				report.Status("%v: stopping %s pid %d", ev.Err, c.Job, pid)
				stop(syscall.SIGTERM)
			}
		case <-timeoutC:
			end.timedOut = true
			report.Status("timeout: stopping %s pid %d", c.Job, pid)
			stop(syscall.SIGTERM)
		case <-killC:
			// The leader may not have been waited for yet: it is alive or
			// an unreaped zombie either way, so its group id is its own.
			killTree(pid)
			killC, killed = nil, true
		}
	}
}

// killStragglers waits, until killC fires, for the command's tree to empty
// (its leader has exited and is not reaped yet), then SIGKILLs what is left
// of it.
func killStragglers(leader int, killC <-chan time.Time) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if left, _ := liveChildren(leader); len(left) == 0 {
			return
		}
		select {
		case <-killC:
			killTree(leader)
			return
		case <-tick.C:
		}
	}
}

// waitGroup is killStragglers for a kernel that does not list children:
// it waits for the process group (its leader reaped) to empty until killC
// fires, then SIGKILLs the group.
func waitGroup(pgid int, killC <-chan time.Time) {
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

// TreeKillBound bounds how long killing a tree may take (a process in
// uninterruptible sleep dies when it wakes).
var TreeKillBound = 5 * time.Second

// killTree SIGKILLs the command's process group, its leader, and every
// process left of its tree — each as tickgate's unreaped child, whose pid
// is still its own; their children come to tickgate as they die and are
// killed in turn — until none is left or TreeKillBound has passed.
func killTree(leader int) {
	_ = syscall.Kill(-leader, syscall.SIGKILL)
	_ = syscall.Kill(leader, syscall.SIGKILL) // alive, or an unreaped zombie: still ours
	deadline := time.Now().Add(TreeKillBound)
	for {
		kids, _ := liveChildren(leader)
		if len(kids) == 0 || time.Now().After(deadline) {
			return
		}
		for _, k := range kids {
			_ = syscall.Kill(k, syscall.SIGKILL)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// liveChildren lists this process' children other than leader that still
// run, reaping those that have exited (stragglers of the command's tree,
// reparented here). known is false when the kernel does not list children.
// Only the command's tree has children of tickgate's while it is
// supervised: the programs tickgate runs itself (systemd-analyze,
// journalctl) run before or after, each reaped by its own wait.
func liveChildren(leader int) (live []int, known bool) {
	pids, known := children()
	for _, pid := range pids {
		if pid == leader {
			continue
		}
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if got == pid || err == syscall.ECHILD {
			continue // it had exited (reaped now), or is no child of ours
		}
		live = append(live, pid)
	}
	return live, known
}

// children lists this process' children, from every thread's
// /proc/self/task/TID/children (a child belongs to the thread that forked
// it; an orphan goes to the thread its parent came from).
func children() ([]int, bool) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, false
	}
	var out []int
	known := false
	for _, t := range tasks {
		data, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		known = true
		for _, f := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out, known
}

// exited is how waitid saw the command end (it is not reaped yet).
type exited struct {
	code   int32 // si_code: CLD_EXITED, CLD_KILLED, CLD_DUMPED
	status int32 // the exit status, or the signal
	err    error // waitid failed: how it ended is unknown
}

// siginfo is the start of the kernel's siginfo_t for SIGCHLD on 64-bit
// Linux: signo, errno, code, padding, then the _sigchld part of its union.
type siginfo struct {
	signo, errno, code, _ int32
	pid                   int32
	uid                   uint32
	status                int32
	_                     [128 - 28]byte
}

const (
	pPID      = 1 // P_PID
	cldExited = 1 // CLD_EXITED
)

// waitExit waits for pid to end without reaping it (WNOWAIT).
func waitExit(pid int) exited {
	for {
		var si siginfo
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid), uintptr(unsafe.Pointer(&si)),
			syscall.WEXITED|unix.WNOWAIT, 0, 0)
		switch errno {
		case 0:
			return exited{code: si.code, status: si.status}
		case syscall.EINTR:
			continue
		}
		return exited{err: errno}
	}
}

// reap reaps pid.
func reap(pid int) {
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
			return
		}
	}
}

// exitCode is the command's exit code: 128+N when signal N ended it, 126
// when it is unknown.
func (w exited) exitCode() int {
	switch {
	case w.err != nil:
		return 126
	case w.code != cldExited:
		return 128 + int(w.status)
	}
	return int(w.status)
}
