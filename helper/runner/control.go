package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tickgate/tickgate/helper/admit"
	"github.com/tickgate/tickgate/helper/backoff"
)

// ControlFD is the descriptor the job's command gets for asking its
// supervisor things (`tickgate backoff`): one end of a socket pair, so a job
// never writes a file tickgate reads.
const ControlFD = 4

// ControlRequest is one request on the control socket: "backoff" (Until,
// Reason), "check" (may the job start now? ExpectedRuntime, when given,
// replaces the job's own for the rollout window) or "fence" (where does the
// job's fleet lease stand?).
type ControlRequest struct {
	Op              string    `json:"op"`
	Until           time.Time `json:"until"`
	Reason          string    `json:"reason"`
	ExpectedRuntime *float64  `json:"expected_runtime_seconds,omitempty"`
}

// ControlReply answers it.
type ControlReply struct {
	OK     bool       `json:"ok"`
	Error  string     `json:"error,omitempty"`
	Backed *backoff.B `json:"backoff,omitempty"` // the back-off that stands now
	Check  *Check     `json:"check,omitempty"`   // the answer to "check"
	Fence  *Fence     `json:"fence,omitempty"`   // the answer to "fence"
}

// Fence is the supervisor's answer to "fence": the job's fleet lock group,
// its fencing token, the lease's end as last granted (the database's
// clock) and how long ago the supervisor sent the renewal that granted it.
// Held is false once no renewal succeeded for half the lease: the
// supervisor is stopping the job, and it must not start another write.
type Fence struct {
	Group            string    `json:"group"`
	Fence            int64     `json:"fence"`
	Until            time.Time `json:"lease_until"`
	ConfirmedSeconds float64   `json:"confirmed_seconds_ago"`
	Held             bool      `json:"held"`
}

// Check is the supervisor's answer to "may this job start now?": its own
// admission (package admit), as a retry of the tick would be asked.
type Check struct {
	Allowed  bool     `json:"allowed"`
	Step     string   `json:"step,omitempty"`
	Code     int      `json:"code,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// MaxControlRequests bounds what one run may ask of its supervisor
// ("fence" aside: it costs the supervisor no I/O).
const MaxControlRequests = 20

// control is the supervisor's end while the command runs. It is read
// through Go's poller: a tick does not park an OS thread in recvfrom.
type control struct {
	f        *os.File
	done     chan struct{}
	requests int
	// backoff is the back-off the job asked for and that stands (nil:
	// none asked). Written by the serving goroutine only; closeControl hands
	// it to the tick once that goroutine has ended.
	backoff *backoff.B
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
	r.try.ctl = &control{f: os.NewFile(uintptr(fds[0]), "tickgate-control"), done: make(chan struct{})}
	go r.serveControl(r.try.ctl)
	return os.NewFile(uintptr(fds[1]), "tickgate-control"), nil
}

// closeControl ends serving: whatever a leftover process of the job still
// sends is never read. A back-off the job asked for is what the tick knows
// of its lock group's from then on (the metrics show it).
func (r *runner) closeControl() {
	ctl := r.try.ctl
	if ctl == nil {
		return
	}
	_ = ctl.f.Close() // ends a Read in progress
	<-ctl.done
	if ctl.backoff != nil {
		r.seen.backoff = ctl.backoff
	}
	r.try.ctl = nil
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
		reply := ControlReply{Error: fmt.Sprintf("too many requests (%d per run)", MaxControlRequests)}
		if isFenceRequest(buf[:n]) {
			// Answered from memory, no file or database touched: a job may
			// ask before every write.
			reply = r.fenceReply()
		} else if ctl.requests++; ctl.requests <= MaxControlRequests {
			reply = r.handle(ctl, buf[:n])
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

func isFenceRequest(msg []byte) bool {
	var req ControlRequest
	return json.Unmarshal(msg, &req) == nil && req.Op == "fence"
}

func (r *runner) handle(ctl *control, msg []byte) ControlReply {
	var req ControlRequest
	if err := json.Unmarshal(msg, &req); err != nil {
		return ControlReply{Error: "a request tickgate does not understand: " + err.Error()}
	}
	switch req.Op {
	case "backoff":
	case "check":
		return r.check(req)
	default:
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
		r.rep.Warn("job %s: back-off of lock group %s not recorded: %v", r.c.Job, r.c.Lock, err)
		return ControlReply{Error: err.Error()}
	}
	ctl.backoff = stands
	r.rep.Warn("job %s: lock group %s backs off until %s: %s", r.c.Job, r.c.Lock, stands.Until.Format(time.RFC3339), stands.Reason)
	return ControlReply{OK: true, Backed: stands}
}

// CheckBound bounds the supervisor's answer to "check" (the fleet is asked
// within its own timeout, twice at most).
var CheckBound = 10 * time.Second

// check answers "may this job start now?" from inside the running job with
// the tick's own admission: the same checks in the same order, the fleet's
// included (a job's user cannot read the fleet DSN), the start deadline
// aside (the run has started).
func (r *runner) check(req ControlRequest) ControlReply {
	s := r.subject(nil)
	if e := req.ExpectedRuntime; e != nil {
		if *e < 0 || *e > float64(maxDuration/time.Second) {
			return ControlReply{Error: "expected_runtime_seconds out of range"}
		}
		s.Policy.ExpectedRuntime = time.Duration(*e * float64(time.Second))
	}
	ctx, cancel := context.WithTimeout(context.Background(), CheckBound)
	defer cancel()
	d := admit.Decide(ctx, s, time.Now())
	return ControlReply{OK: true, Check: &Check{Allowed: d.Allowed, Step: d.Step, Code: d.Code, Reason: d.Reason, Warnings: d.Warnings}}
}

const maxDuration = time.Duration(1<<63 - 1)
