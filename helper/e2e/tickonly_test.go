package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// alone copies tickgate-tick into a directory of its own: no full helper
// beside it to hand a tick to.
func alone(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(tickBin)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "tickgate-tick")
	if err := os.WriteFile(p, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// tickgate-tick runs a tick that needs neither the fleet nor notifications
// itself (no full helper beside it, and the tick is recorded); one that
// needs either is handed to the full helper before anything is locked,
// read or written, and without one beside it fails naming what and where.
func TestTickOnlyRunsItsOwnTicks(t *testing.T) {
	e := newEnv(t)
	prog := alone(t)
	c := e.cmd("run", "j", "--", "true")
	c.Path, c.Args[0] = prog, prog
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("a plain tick without the full helper beside: %v\n%s", err, out)
	}
	if st := e.state("j"); st.Result != "success" || st.RunsTotal != 1 {
		t.Fatalf("state after the tick: %+v", st)
	}

	e.extraEnv = append(e.extraEnv, "TICKGATE_NOTIFY_DIR="+e.dir+"/notify")
	if err := os.MkdirAll(e.dir+"/notify", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.dir+"/notify/k.json", []byte(`{"targets": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ran := filepath.Join(e.dir, "ran")
	for _, tc := range []struct {
		job, need string
		flags     []string
	}{
		{"f", "fleet coordination", []string{"--fleet"}},
		{"g", "fleet coordination", []string{"--lock-scope", "fleet"}},
		{"k", "notifications", nil},
	} {
		args := append(append([]string{"run"}, tc.flags...), tc.job, "--", "touch", ran)
		c := e.cmd(args...)
		c.Path, c.Args[0] = prog, prog
		out, _ := c.CombinedOutput()
		want := "job " + tc.job + ": " + tc.need + " is the full helper's (tickgate beside " + prog + "), which cannot be started"
		if c.ProcessState.ExitCode() != 70 || !strings.Contains(string(out), want) {
			t.Fatalf("%v: exit %d, want 70 and %q:\n%s", tc.flags, c.ProcessState.ExitCode(), want, out)
		}
		if fileExists(ran) || fileExists(filepath.Join(e.stateDir, tc.job)) {
			t.Fatalf("%v: the command ran or the job's state dir was made before the hand-off", tc.flags)
		}
	}
}

// With the full helper beside it, tickgate-tick hands a fleet tick over:
// the full helper's own fleet handling answers (an unreachable database
// under --gate-fail closed: 78, the reason naming it), not this build's.
func TestTickOnlyHandsFleetTicksOver(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(e.dir+"/fleet-tick.dsn", []byte(unreachableDSN("tickgate_tick")), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.mustCode(78, "run", "--fleet-timeout", "1s", "--fleet", "j", "--", "true")
	if !strings.Contains(r.stderr, `reason="fleet-gate-unreachable: connecting to the fleet database 127.0.0.1:1/tickgate as tickgate_tick`) ||
		strings.Contains(r.stderr, "tickgate-tick") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
}

// tickgate-tick has `run` only; an operator command says where it is.
func TestTickOnlyHasNoOperatorCommands(t *testing.T) {
	e := newEnv(t)
	c := e.cmd("status")
	c.Path, c.Args[0] = tickBin, tickBin
	out, _ := c.CombinedOutput()
	if c.ProcessState.ExitCode() != 64 || !strings.Contains(string(out), `tickgate-tick runs jobs only (tickgate-tick run JOB -- COMMAND); "status" and the other operator commands are tickgate's`) {
		t.Fatalf("exit %d:\n%s", c.ProcessState.ExitCode(), out)
	}
}
