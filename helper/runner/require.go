// A stage of a tick between admission and the lock: the job's check
// commands (requires: {command}, package require). A check runs as the
// job's command would — its user, its environment, its unit's sandbox, its
// own process group — with no control socket, stdin from /dev/null, stdout
// to the journal and stderr read for the reason.

package runner

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/require"
	"github.com/tickgate/tickgate/helper/textsafe"
)

// checkStderrMax is how much of a check command's stderr is read (its
// first line names why it failed).
const checkStderrMax = 64 << 10

// preconditions runs the job's check commands in order; the first that
// fails skips the tick (75) with its reason. (Its dependencies on other
// jobs are admission's: package admit's requires step.)
func (r *runner) preconditions() *ended {
	for _, q := range r.c.Requires {
		if q.Command == nil {
			continue
		}
		code, line, sig, err := r.runCheck(q)
		switch {
		case sig != nil:
			return r.finishInterrupted(sig, false, 0)
		case err != nil:
			return r.skip(exitcode.Skipped, require.Failed(q, 127, err.Error()))
		case code != 0:
			return r.skip(exitcode.Skipped, require.Failed(q, code, line))
		}
	}
	return nil
}

// runCheck runs a check command to its end or its timeout: its exit code
// (-1: timed out, and killed), the first line of its stderr, or the signal
// that ended the tick meanwhile (the check killed). Nothing of its process
// tree outlives it.
func (r *runner) runCheck(q require.Requirement) (code int, line string, sig os.Signal, err error) {
	env, err := r.childEnv()
	if err != nil {
		return 0, "", nil, err
	}
	env = withoutVar(env, "TICKGATE_CONTROL_FD") // a check gets no control socket
	ch, err := r.process(q.Command, env, nil)
	if err != nil {
		return 0, "", nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, "", nil, err
	}
	defer pr.Close()
	ch.std = [3]any{nil, r.c.Stdout, pw}
	ch.attr.Sys.Pdeathsig = syscall.SIGKILL // a killed helper leaves no check running
	runtime.LockOSThread()                  // Pdeathsig follows the thread that forked the child
	defer runtime.UnlockOSThread()
	if err := subreaper(); err != nil {
		pw.Close()
		return 0, "", nil, err
	}
	pid, err := ch.start()
	pw.Close()
	if err != nil {
		return 0, "", nil, err
	}
	read := make(chan string, 1)
	go func() { read <- firstLine(io.LimitReader(pr, checkStderrMax)) }()
	done := make(chan exited, 1)
	go func() { done <- waitExit(pid) }()
	timer := time.NewTimer(q.Timeout)
	defer timer.Stop()
	var ex exited
	select {
	case ex = <-done:
		code = ex.exitCode()
	case <-timer.C:
		code = -1
	case sig = <-r.sigCh:
	}
	// The check, its group and whatever of its tree is left: SIGKILLed
	// while its pid is still unreaped (no id is recycled meanwhile).
	killTree(pid)
	if code == -1 || sig != nil {
		<-done
	}
	reap(pid)
	select {
	case line = <-read:
	case <-time.After(time.Second): // a descriptor passed out of the tree keeps the pipe open
	}
	return code, line, sig, nil
}

// firstLine is the first non-blank line of r, cleaned for printing and
// clipped; the rest is drained.
func firstLine(rd io.Reader) string {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 4096), checkStderrMax)
	out := ""
	for sc.Scan() {
		if l := strings.TrimSpace(string(bytes.ToValidUTF8(sc.Bytes(), []byte("?")))); l != "" && out == "" {
			out = l
		}
	}
	_, _ = io.Copy(io.Discard, rd)
	out = textsafe.Clean(out)
	if len(out) > 200 {
		out = out[:200] + "…"
	}
	return out
}

// withoutVar is env without NAME=… entries.
func withoutVar(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
