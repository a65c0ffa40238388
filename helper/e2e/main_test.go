// Package e2e tests the built tickgate binary with real processes, files,
// locks and signals.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickgate/tickgate/helper/proc"
	"github.com/tickgate/tickgate/helper/safefs"
	"github.com/tickgate/tickgate/helper/state"
)

// bin is the full helper; tickBin the tick-only build (tickgate-tick, the
// ExecStart of jobs without fleet coordination or notifications), which
// e.cmd runs for `run`: it hands fleet and notification ticks to bin.
var bin, tickBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tickgate-e2e-")
	if err != nil {
		panic(err)
	}
	bin, tickBin = filepath.Join(dir, "tickgate"), filepath.Join(dir, "tickgate-tick")
	_ = os.Chmod(dir, 0o755) // the security suite runs it as other users
	// The same flags as `make build`: static binaries without urfave/cli's
	// man-page generator (it costs ~0.5 ms of init per tick). tickgate-exec,
	// beside tickgate as the role installs it, is the shim of non-root jobs;
	// tickgate-tick, beside it too, the same command line with run alone
	// wired (as scripts/build-helper builds them).
	for _, prog := range []string{"tickgate", "tickgate-tick", "tickgate-exec"} {
		build := exec.Command("go", "build", "-tags", "urfave_cli_no_docs", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w",
			"-o", filepath.Join(dir, prog), "github.com/tickgate/tickgate/helper/cmd/"+prog)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n", prog, err)
			os.Exit(2)
		}
	}
	code := m.Run()
	for _, line := range afterRun {
		fmt.Println(line)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one isolated tickgate installation in a temp dir.
type env struct {
	t                                       *testing.T
	dir, stateDir, lockDir, gate, metricDir string
	extraEnv                                []string
	owners                                  *safefs.Owners // trusted besides root (the supervisor)
}

func newEnv(t *testing.T) *env {
	d := t.TempDir()
	return &env{t: t, dir: d, stateDir: d + "/state", lockDir: d + "/lock", gate: d + "/gate.json", metricDir: d + "/metrics"}
}

func (e *env) cmd(args ...string) *exec.Cmd {
	c := exec.Command(helperFor(args), args...)
	base := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TICKGATE_") && !strings.HasPrefix(kv, "JOURNAL_STREAM=") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			base = append(base, kv)
		}
	}
	c.Env = append(base, "TICKGATE_STATE_ROOT="+e.stateDir, "TICKGATE_DATA_ROOT="+e.dir+"/data", "TICKGATE_LOCK_DIR="+e.lockDir,
		"TICKGATE_FLEET_DSN_FILE="+e.dir+"/fleet-tick.dsn", "TICKGATE_FLEET_ADMIN_DSN_FILE="+e.dir+"/fleet-admin.dsn",
		"TICKGATE_GATE="+e.gate, "TICKGATE_METRICS_DIR="+e.metricDir)
	c.Env = append(c.Env, e.extraEnv...)
	return c
}

// helperFor is the program the units run for args: tickgate-tick for a
// tick (its first argument that is not a flag is "run"), else tickgate.
func helperFor(args []string) string {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			if a == "run" {
				return tickBin
			}
			break
		}
	}
	return bin
}

type result struct {
	code           int
	stdout, stderr string
}

func (e *env) run(args ...string) result {
	e.t.Helper()
	c := e.cmd(args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("running %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{code, out.String(), errb.String()}
}

func (e *env) mustCode(want int, args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != want {
		e.t.Fatalf("tickgate %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

func (e *env) state(job string) *state.State {
	e.t.Helper()
	st, err := state.Store{Dir: e.stateDir, Owners: e.owners}.Load(job)
	if err != nil {
		e.t.Fatalf("state of %s: %v", job, err)
	}
	if st == nil {
		e.t.Fatalf("no state for %s", job)
	}
	return st
}

func (e *env) writeGate(content string) {
	e.t.Helper()
	if err := os.WriteFile(e.gate, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// waitFor polls cond up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startRun starts `tickgate run ARGS...` in the background and waits until
// job's command runs; it returns the helper's process and the command's pid.
func (e *env) startRun(job string, args ...string) (*exec.Cmd, int) {
	e.t.Helper()
	c := e.cmd(append([]string{"run"}, args...)...)
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	return c, e.childPID(job)
}

// childPID waits until the job's state names a running child and returns it.
func (e *env) childPID(job string) int {
	e.t.Helper()
	var pid int
	waitFor(e.t, job+" child pid in state.json", func() bool {
		st, err := state.Store{Dir: e.stateDir}.Load(job)
		if err == nil && st != nil && st.Result == state.Running && st.PID > 0 {
			pid = st.PID
			return true
		}
		return false
	})
	return pid
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1
}

func groupGone(pgid int) bool {
	return syscall.Kill(-pgid, 0) == syscall.ESRCH
}

func alive(pid int) bool { return proc.Alive(pid, 0) }

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s does not parse: %v\n%s", path, err, data)
	}
}
