package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/helper/state"
)

// Preconditions (--requires): a failing check command and a stale
// dependency skip with their reasons, like every skip (75, not failed, no
// breaker); passing ones let the job run.
func TestRequires(t *testing.T) {
	e := newEnv(t)
	req := func(json string, job string, cmd ...string) []string {
		return append([]string{"run", "--halt-after", "1", "--requires", json, job, "--"}, cmd...)
	}

	// A check command that fails: its argv0, its exit code, its stderr's first line.
	r := e.mustCode(75, req(`[{"command": ["/bin/sh", "-c", "echo ok >&1; printf '\\n  db down\\nmore\\n' >&2; exit 2"]}]`, "j", "sh", "-c", "echo ran > "+e.dir+"/ran")...)
	if !strings.Contains(r.stderr, `reason="precondition-failed: /bin/sh exited 2: db down"`) {
		t.Fatalf("stderr: %s", r.stderr)
	}
	if fileExists(e.dir + "/ran") {
		t.Fatal("the job ran although its precondition failed")
	}
	s := e.state("j")
	if s.Result != state.Skipped || s.ConsecutiveFailures != 0 || s.SkipsTotal != 1 {
		t.Fatalf("state: result %s, failures %d, skips %d", s.Result, s.ConsecutiveFailures, s.SkipsTotal)
	}
	// Twice more: a skip never trips the breaker (--halt-after 1).
	e.mustCode(75, req(`[{"command": ["/bin/false"]}]`, "j", "true")...)
	if e.state("j").Result != state.Skipped || fileExists(e.stateDir+"/j/halted") {
		t.Fatal("a precondition skip moved the breaker")
	}

	// A check that outlives its timeout is killed, with its process group.
	start := time.Now()
	r = e.mustCode(75, req(`[{"command": ["/bin/sh", "-c", "sleep 30 & echo $! > `+e.dir+`/bg; sleep 30"], "timeout": "300ms"}]`, "j", "true")...)
	if !strings.Contains(r.stderr, `reason="precondition-failed: /bin/sh timed out after 300ms"`) {
		t.Fatalf("stderr: %s", r.stderr)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the timed-out check held the tick %s", took)
	}
	if b, err := os.ReadFile(e.dir + "/bg"); err == nil {
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		waitFor(t, "the check's background process to be killed", func() bool { return pid > 0 && !alive(pid) })
	}

	// Passing checks, in order, then the job runs (the check's environment
	// is the job's: TICKGATE_JOB is set, no control socket).
	e.mustCode(0, req(`[{"command": ["/bin/sh", "-c", "[ \"$TICKGATE_JOB\" = j ] && [ -z \"$TICKGATE_CONTROL_FD\" ]"]}, {"command": ["/bin/true"]}]`, "j", "sh", "-c", "echo ran > "+e.dir+"/ran")...)
	if !fileExists(e.dir + "/ran") {
		t.Fatal("the job did not run with its preconditions met")
	}

	// A check that is no program: a skip naming it, not a failure.
	r = e.mustCode(75, req(`[{"command": ["/nonexistent/check"]}]`, "j", "true")...)
	if !strings.Contains(r.stderr, `precondition-failed: /nonexistent/check exited 127`) {
		t.Fatalf("stderr: %s", r.stderr)
	}

	// A dependency on this host: never succeeded, then fresh, then stale.
	dep := `[{"job": "dep", "succeeded_within": "2s"}]`
	r = e.mustCode(75, req(dep, "k", "true")...)
	if !strings.Contains(r.stderr, `reason="dependency-stale: dep never succeeded (needs 2s)"`) {
		t.Fatalf("stderr: %s", r.stderr)
	}
	e.mustCode(1, "run", "dep", "--", "false") // a failure is no success
	e.mustCode(75, req(dep, "k", "true")...)
	e.mustCode(0, "run", "dep", "--", "true")
	e.mustCode(0, req(dep, "k", "true")...)
	time.Sleep(2100 * time.Millisecond)
	r = e.mustCode(75, req(dep, "k", "true")...)
	if !strings.Contains(r.stderr, `reason="dependency-stale: dep last succeeded 2s ago (needs 2s)"`) &&
		!strings.Contains(r.stderr, `reason="dependency-stale: dep last succeeded 3s ago (needs 2s)"`) {
		t.Fatalf("stderr: %s", r.stderr)
	}

	// catch_up_on: [gate, precondition] owes a run after a precondition
	// skip; catch_up alone does not.
	sched := []string{"--catch-up", "once", "--schedule", "*-*-* *:*:00"}
	args := append([]string{"run"}, sched...)
	e.mustCode(75, append(args, "--requires", `[{"command": ["/bin/false"]}]`, "c1", "--", "true")...)
	if e.state("c1").CatchUp != nil {
		t.Fatal("a precondition skip owes a catch-up without --catch-up-on precondition")
	}
	e.mustCode(75, append(args, "--catch-up-on", "gate,precondition", "--requires", `[{"command": ["/bin/false"]}]`, "c2", "--", "true")...)
	if cu := e.state("c2").CatchUp; cu == nil || !strings.HasPrefix(cu.Reason, "precondition-failed: ") {
		t.Fatalf("catch-up after a precondition skip: %+v", cu)
	}
}

// Bad --requires is refused naming the job and the flag.
func TestRequiresBadInput(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ json, want string }{
		{`{}`, "job j: --requires: not a JSON list"},
		{`[{"command": ["sh"]}]`, `job j: --requires: item 1: command: "sh" is not an absolute path`},
		{`[{"command": ["/bin/true"], "timeout": "1y"}]`, "job j: --requires: item 1: timeout: "},
		{`[{"job": "x"}]`, "job j: --requires: item 1: job x: succeeded_within is required"},
		{`[{"job": "x", "succeeded_within": "1h", "scope": "fleet"}]`, "job j: --requires: job x with scope fleet needs fleet coordination"},
		{`[{"job": "j", "succeeded_within": "1h"}]`, "job j: --requires: a job cannot require its own success"},
		{`[{"job": "x", "succeeded_within": "1h", "extra": 1}]`, `job j: --requires: item 1: json: unknown field "extra"`},
	} {
		r := e.mustCode(64, "run", "--requires", c.json, "j", "--", "true")
		if !strings.Contains(r.stderr, c.want) {
			t.Errorf("--requires %s: stderr %q, want %q", c.json, r.stderr, c.want)
		}
	}
	e.mustCode(64, "run", "--catch-up-on", "precondition", "--requires", `[]`, "j", "--", "true")
}

// A check command runs as the job's user, like the command.
func TestRequiresRunsAsJobUser(t *testing.T) {
	needRoot(t)
	s := newSecEnv(t)
	args := []string{tickBin, "run", "--user", strconv.Itoa(uidA), "--requires",
		`[{"command": ["/bin/sh", "-c", "[ $(id -u) = ` + strconv.Itoa(uidA) + ` ] || { echo uid $(id -u) >&2; exit 3; }"]}]`, "a", "--", "true"}
	if r, _ := s.asUID(supUID, true, args...); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	args[5] = `[{"command": ["/bin/sh", "-c", "[ $(id -u) = 0 ] || { echo uid $(id -u) >&2; exit 3; }"]}]`
	r, _ := s.asUID(supUID, true, args...)
	if r.code != 75 || !strings.Contains(r.stderr, "precondition-failed: /bin/sh exited 3: uid "+strconv.Itoa(uidA)) {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
}

// An operator's gate check asks a job's dependencies as its tick does
// (from the --requires its latest tick ran with); its check commands only
// a tick runs.
func TestRequiresGateCheck(t *testing.T) {
	e := newEnv(t)
	reqs := `[{"job": "dep", "succeeded_within": "1h"}, {"command": ["/bin/false"]}]`
	e.mustCode(75, "run", "--requires", reqs, "k", "--", "true")
	r := e.mustCode(75, "gate", "check", "k")
	if !strings.Contains(r.stderr, "dependency-stale: dep never succeeded (needs 1h)") {
		t.Fatalf("gate check: %s", r.stderr)
	}
	e.mustCode(0, "run", "dep", "--", "true")
	e.mustCode(0, "gate", "check", "k") // the check command is the tick's alone
	r = e.mustCode(75, "run", "--requires", reqs, "k", "--", "true")
	if !strings.Contains(r.stderr, `reason="precondition-failed: /bin/false exited 1"`) {
		t.Fatalf("tick: %s", r.stderr)
	}
}

// A check command is asked again once the lock is held after a wait: what
// held before the wait may not hold any more.
func TestRequiresAgainAfterLockWait(t *testing.T) {
	e := newEnv(t)
	holder, _ := e.startRun("holder", "--lock", "g", "holder", "--", "sleep", "2")
	flag := e.dir + "/ok"
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// While the tick waits for the lock, the condition goes away.
	go func() { time.Sleep(1200 * time.Millisecond); os.Remove(flag) }()
	r := e.mustCode(75, "run", "--lock", "g", "--lock-wait", "10s", "--requires",
		`[{"command": ["/bin/sh", "-c", "test -e `+flag+` || { echo gone >&2; exit 1; }"]}]`, "waiter", "--", "true")
	_ = holder.Wait()
	if !strings.Contains(r.stderr, `reason="precondition-failed: /bin/sh exited 1: gone"`) {
		t.Fatalf("after the wait: %s", r.stderr)
	}
}
