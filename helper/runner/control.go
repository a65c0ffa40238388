package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/reason"
)

// ControlFD is the descriptor the job's command gets for asking its
// supervisor things (`tickgate backoff`): one end of a socket pair, so a job
// never writes a file tickgate reads.
const ControlFD = 4

// ControlRequest is one request on the control socket.
type ControlRequest struct {
	Op     string    `json:"op"` // "backoff"
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// ControlReply answers it.
type ControlReply struct {
	OK     bool       `json:"ok"`
	Error  string     `json:"error,omitempty"`
	Backed *backoff.B `json:"backoff,omitempty"` // the back-off that stands now
}

// MaxControlRequests bounds what one run may ask of its supervisor.
const MaxControlRequests = 20

// control is the supervisor's end while the command runs. It is read
// through Go's poller: a tick does not park an OS thread in recvfrom.
type control struct {
	f        *os.File
	done     chan struct{}
	requests int
}

// openControl makes the socket pair; the returned file is the child's end.
func (r *runner) openControl() (*os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// The child's end blocks, as a program expects of an inherited fd.
	if err := unix.SetNonblock(fds[1], false); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, fmt.Errorf("control socket: %w", err)
	}
	r.ctl = &control{f: os.NewFile(uintptr(fds[0]), "tickgate-control"), done: make(chan struct{})}
	go r.serveControl(r.ctl)
	return os.NewFile(uintptr(fds[1]), "tickgate-control"), nil
}

// closeControl ends serving: whatever a leftover process of the job still
// sends is never read.
func (r *runner) closeControl() {
	if r.ctl == nil {
		return
	}
	_ = r.ctl.f.Close() // ends a Read in progress
	<-r.ctl.done
	r.ctl = nil
}

// serveControl answers requests, one packet each (bounded), until the
// socket is closed. Replies never block: a job that does not read them
// loses them.
func (r *runner) serveControl(ctl *control) {
	defer close(ctl.done)
	buf := make([]byte, 4096)
	for {
		n, err := ctl.f.Read(buf)
		if err != nil || n == 0 {
			return
		}
		ctl.requests++
		reply := ControlReply{Error: fmt.Sprintf("too many requests (%d per run)", MaxControlRequests)}
		if ctl.requests <= MaxControlRequests {
			reply = r.handle(buf[:n])
		}
		out, _ := json.Marshal(reply)
		if rc, err := ctl.f.SyscallConn(); err == nil {
			_ = rc.Write(func(fd uintptr) bool {
				_ = unix.Sendto(int(fd), out, unix.MSG_DONTWAIT, nil)
				return true // never wait for room
			})
		}
	}
}

func (r *runner) handle(msg []byte) ControlReply {
	var req ControlRequest
	if err := json.Unmarshal(msg, &req); err != nil {
		return ControlReply{Error: "a request tickgate does not understand: " + err.Error()}
	}
	if req.Op != "backoff" {
		return ControlReply{Error: fmt.Sprintf("unknown request %q", req.Op)}
	}
	now := time.Now()
	if err := backoff.Validate(req.Until, req.Reason, now); err != nil {
		return ControlReply{Error: err.Error()}
	}
	b := backoff.B{Lock: r.c.Lock, Until: req.Until.UTC(), Reason: req.Reason, SetAt: now.UTC(),
		SetBy: fmt.Sprintf("job %s (run %s)", r.c.Job, r.runID)}
	var stands *backoff.B
	var err error
	if r.c.Fleet != nil && r.c.Fleet.LockScope && r.fleetOpen() {
		b.SetBy += " on " + r.c.Fleet.Host
		stands, err = r.fleetExtendBackoff(b)
	} else {
		stands, err = backoff.Extend(context.Background(), r.c.LockDir, b, r.c.Owners)
	}
	if err != nil {
		r.rep.Warn("job=%s: back-off of lock group %s not recorded: %v", r.c.Job, r.c.Lock, err)
		return ControlReply{Error: err.Error()}
	}
	r.backoff = stands // read after the run: closeControl waits for this goroutine
	r.rep.Warn("job=%s: lock group %s backs off until %s: %s", r.c.Job, r.c.Lock, stands.Until.Format(time.RFC3339), stands.Reason)
	return ControlReply{OK: true, Backed: stands}
}

// checkBackoff skips the tick while its lock group backs off (this host's,
// or the fleet's for a fleet-scoped lock group).
func (r *runner) checkBackoff() (Outcome, bool, error) {
	b, err := r.activeBackoff()
	r.backoff = b // the metrics of this tick show it without asking again
	if err != nil {
		if r.c.GateFailOpen {
			r.rep.Warn("job=%s: %v; running anyway (--gate-fail open)", r.c.Job, err)
			return Outcome{}, false, nil
		}
		out, err := r.skip(exitcode.GateBad, reason.F(reason.GateUnusable, "%v", err))
		return out, true, err
	}
	if b == nil {
		return Outcome{}, false, nil
	}
	out, err := r.skip(exitcode.Skipped, backoffReason(b))
	return out, true, err
}

func backoffReason(b *backoff.B) string {
	return reason.F(reason.Backoff, "lock group %s until %s: %s (set by %s)", b.Lock, b.Until.UTC().Format(time.RFC3339), b.Reason, b.SetBy)
}

// activeBackoff is the back-off that stops the tick now, if any.
func (r *runner) activeBackoff() (*backoff.B, error) {
	now := time.Now()
	b, err := backoff.Read(r.c.LockDir, r.c.Lock, r.c.Owners)
	if err != nil {
		return nil, err
	}
	if b.Active(now) {
		return b, nil
	}
	if r.c.Fleet != nil && r.c.Fleet.LockScope && r.fleetOpen() {
		fb, err := r.fleetBackoff()
		if err != nil {
			return nil, err
		}
		if fb.Active(now) {
			return fb, nil
		}
	}
	return nil, nil
}
