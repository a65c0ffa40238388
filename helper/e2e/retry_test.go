package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickgate/tickgate/helper/state"
)

// flaky is a command that fails with code 7 until it has been called n
// times, then exits 0; every call appends a line to count.
func flaky(count string, n int) []string {
	return []string{"sh", "-c", `echo x >>"$0"; [ "$(wc -l <"$0")" -ge "$1" ]` + ` || exit 7`, count, itoa(n)}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func lines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(data), "\n")
}

// A transient failure retried within the tick: the second attempt succeeds;
// each attempt is reported; the breaker never sees the failure.
func TestRetrySucceedsOnSecondAttempt(t *testing.T) {
	e := newEnv(t)
	count := e.dir + "/count"
	start := time.Now()
	r := e.mustCode(0, append([]string{"run", "--retry-codes", "7", "--retries", "2", "--retry-delay", "200ms", "--halt-after", "1", "j", "--"}, flaky(count, 2)...)...)
	took := time.Since(start)
	if n := lines(t, count); n != 2 {
		t.Fatalf("%d attempts, want 2", n)
	}
	// Equal jitter: the wait is between half and all of 200ms.
	if took < 100*time.Millisecond {
		t.Fatalf("no wait between attempts (%s)", took)
	}
	if !strings.Contains(r.stderr, "result=retrying exit=7") || !strings.Contains(r.stderr, "attempt=1 reason=\"exit code 7 is a retry code; attempt 1 of 3 failed, next in") ||
		!strings.Contains(r.stderr, "result=success exit=0") || !strings.Contains(r.stderr, "attempt=2") {
		t.Fatalf("attempts not reported:\n%s", r.stderr)
	}
	st := e.state("j")
	if st.Result != state.Success || st.Reason != "ok on attempt 2 of 3" || st.Attempt != 2 || st.RetriesTotal != 1 || st.ConsecutiveFailures != 0 || st.RunsTotal != 1 {
		t.Fatalf("state: %+v", st)
	}
	if e.hasMarker("j", "halted") {
		t.Fatal("a retried failure tripped the breaker (halt-after 1)")
	}
	metrics, _ := os.ReadFile(filepath.Join(e.metricDir, "tickgate_j.prom"))
	if !strings.Contains(string(metrics), `tickgate_retries_total{job="j",lock="j"} 1`) {
		t.Fatalf("metrics:\n%s", metrics)
	}
}

// Every attempt fails: the tick fails once (one breaker step), after 1 +
// retries attempts, with the last code; a code not listed is not retried.
func TestRetriesExhausted(t *testing.T) {
	e := newEnv(t)
	count := e.dir + "/count"
	args := append([]string{"run", "--retry-codes", "7,9", "--retries", "2", "--retry-delay", "20ms", "--halt-after", "2", "j", "--"}, flaky(count, 99)...)
	e.mustCode(7, args...)
	if n := lines(t, count); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
	st := e.state("j")
	if st.Result != state.Failed || st.Reason != "exit code 7 is not an ok code (attempt 3 of 3)" || st.ConsecutiveFailures != 1 || st.RetriesTotal != 2 {
		t.Fatalf("state: %+v", st)
	}
	e.mustCode(7, args...)
	if !e.hasMarker("j", "halted") || e.state("j").ConsecutiveFailures != 2 {
		t.Fatal("the breaker did not count the second failed tick")
	}
	e.mustCode(0, "clear", "j")
	os.Remove(count)
	e.mustCode(3, "run", "--retry-codes", "7", "--retries", "3", "--retry-delay", "20ms", "k", "--", "sh", "-c", `echo x >>"$0"; exit 3`, count)
	if n := lines(t, count); n != 1 {
		t.Fatalf("a code that is not a retry code ran %d times", n)
	}
}

// The wait between attempts honours the gate (a deploy's closure stops
// further attempts), markers, and signals; drain and status see the tick as
// running while it waits.
func TestRetryWaitHonoursGateAndSignals(t *testing.T) {
	e := newEnv(t)
	count := e.dir + "/count"
	c := e.cmd(append([]string{"run", "--retry-codes", "7", "--retries", "5", "--retry-delay", "30s", "j", "--"}, flaky(count, 99)...)...)
	var errb strings.Builder
	c.Stderr = &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the wait before attempt 2", func() bool {
		st, err := state.Store{Dir: e.stateDir}.Load("j")
		return err == nil && st != nil && st.NextAttemptAt != nil
	})
	var sj struct {
		Jobs []struct {
			Job     string `json:"job"`
			Running bool   `json:"running"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(e.mustCode(0, "status", "--json", "--no-systemd").stdout), &sj); err != nil || len(sj.Jobs) != 1 || !sj.Jobs[0].Running {
		t.Fatalf("status while waiting to retry: %+v %v", sj, err)
	}
	if r := e.run("drain", "--timeout", "0.2s"); r.code != 1 {
		t.Fatalf("drain while a tick waits to retry: exit %d (want 1, still running)\n%s", r.code, r.stdout+r.stderr)
	}
	closed := time.Now()
	e.mustCode(0, "gate", "close", "--reason", "deploy 7")
	err := c.Wait()
	if took := time.Since(closed); took > 3*time.Second {
		t.Fatalf("the wait went on %s after the gate closed", took)
	}
	if code := exitCode(err); code != 7 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	st := e.state("j")
	if st.Result != state.Failed || !strings.Contains(st.Reason, "(attempt 1 of 6; no more attempts: gate-closed: deploy 7)") || lines(t, count) != 1 {
		t.Fatalf("state: %+v", st)
	}
	e.mustCode(0, "gate", "open")

	// SIGTERM during the wait: interrupted, at once.
	c = e.cmd(append([]string{"run", "--retry-codes", "7", "--retries", "5", "--retry-delay", "30s", "k", "--"}, flaky(e.dir+"/count2", 99)...)...)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the wait before attempt 2", func() bool {
		st, err := state.Store{Dir: e.stateDir}.Load("k")
		return err == nil && st != nil && st.NextAttemptAt != nil
	})
	sent := time.Now()
	_ = c.Process.Signal(syscall.SIGTERM)
	err = c.Wait()
	if code := exitCode(err); code != 143 || time.Since(sent) > 2*time.Second {
		t.Fatalf("SIGTERM while waiting: exit %d after %s", code, time.Since(sent))
	}
	if st := e.state("k"); st.Result != state.Interrupted {
		t.Fatalf("state: %+v", st)
	}

	// A halt during the wait stops it too.
	c = e.cmd(append([]string{"run", "--retry-codes", "7", "--retries", "5", "--retry-delay", "30s", "h", "--"}, flaky(e.dir+"/count3", 99)...)...)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the wait before attempt 2", func() bool {
		st, err := state.Store{Dir: e.stateDir}.Load("h")
		return err == nil && st != nil && st.NextAttemptAt != nil
	})
	e.mustCode(0, "halt", "h", "--reason", "stop it")
	if code := exitCode(c.Wait()); code != 7 || !strings.Contains(e.state("h").Reason, "no more attempts: halted") {
		t.Fatalf("halt while waiting: exit %d, %+v", code, e.state("h"))
	}
}

func TestRetryFlags(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--retry-codes", "0", "--retries", "1"}, "exit code 0 is in both --retry-codes and --ok-codes"},
		{[]string{"--retry-codes", "4", "--retries", "1", "--halt-codes", "4"}, "exit code 4 is in both --retry-codes and --halt-codes"},
		{[]string{"--retry-codes", "7"}, "--retries and --retry-codes go together"},
		{[]string{"--retries", "2"}, "--retries and --retry-codes go together"},
		{[]string{"--retry-codes", "75", "--retries", "1"}, "exit code 75 is tickgate's own"},
		{[]string{"--retry-codes", "7", "--retries", "-1"}, "--retries: -1 is negative"},
		{[]string{"--retry-codes", "7", "--retries", "1", "--retry-delay", "soon"}, "--retry-delay"},
	} {
		r := e.mustCode(64, append(append([]string{"run"}, c.args...), "j", "--", "true")...)
		if !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: %s", c.args, r.stderr)
		}
	}
}

func (e *env) hasMarker(job, m string) bool {
	_, err := os.Stat(filepath.Join(e.stateDir, job, m))
	return err == nil
}
