package commands

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/runner"
	"golang.org/x/sys/unix"
)

// Asking the job's own supervisor, from inside a running job, over the
// control socket it handed the job (runner.ControlFD): backoff, gate check
// and fence use these.

// askSupervisor asks the job's supervisor for a back-off of its lock group.
func askSupervisor(until time.Time, reasonText string) (*backoff.B, error) {
	rep, err := askControl(runner.ControlRequest{Op: "backoff", Until: until, Reason: reasonText}, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if !rep.OK || rep.Backed == nil {
		return nil, fmt.Errorf("refused: %s", rep.Error)
	}
	return rep.Backed, nil
}

// askCheck asks the job's supervisor whether the job may start now.
func askCheck(expected *time.Duration) (*runner.Check, error) {
	req := runner.ControlRequest{Op: "check"}
	if expected != nil {
		sec := expected.Seconds()
		req.ExpectedRuntime = &sec
	}
	rep, err := askControl(req, runner.CheckBound+2*time.Second)
	if err != nil {
		return nil, err
	}
	if !rep.OK || rep.Check == nil {
		return nil, fmt.Errorf("refused: %s", rep.Error)
	}
	return rep.Check, nil
}

// askControl sends one request over the job's control descriptor and waits
// (up to wait) for the answer.
func askControl(req runner.ControlRequest, wait time.Duration) (*runner.ControlReply, error) {
	fd, err := strconv.Atoi(os.Getenv("TICKGATE_CONTROL_FD"))
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("TICKGATE_CONTROL_FD=%q is not a descriptor", os.Getenv("TICKGATE_CONTROL_FD"))
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil, fmt.Errorf("descriptor %d is not tickgate's control socket (is this running under `tickgate run`?)", fd)
	}
	msg, _ := json.Marshal(req)
	if err := unix.Sendto(fd, msg, 0, nil); err != nil {
		return nil, fmt.Errorf("asking the supervisor: %v (has the tick that started this job ended?)", err)
	}
	tv := unix.NsecToTimeval(int64(wait))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil || n == 0 {
		return nil, fmt.Errorf("no answer from the supervisor: %v", err)
	}
	var rep runner.ControlReply
	if err := json.Unmarshal(buf[:n], &rep); err != nil {
		return nil, fmt.Errorf("the supervisor's answer does not parse: %v", err)
	}
	return &rep, nil
}
