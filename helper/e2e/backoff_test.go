package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/state"
)

// A job told to back off makes every job of its lock group skip until then
// (and only that group); a back-off only extends; an operator clears it; a
// retry waits no longer than the back-off allows.
func TestBackoffSharedByTheLockGroup(t *testing.T) {
	e := newEnv(t)
	// The job asks through its control descriptor (no --lock: its own group).
	r := e.mustCode(0, "run", "--lock", "api", "harvest", "--", bin, "backoff", "--for", "2s", "--reason", "429 from api.example")
	if !strings.Contains(r.stdout, "lock group api backs off until ") || !strings.Contains(r.stderr, "lock group api backs off until") {
		t.Fatalf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	set := time.Now()
	var b backoff.B
	readJSON(t, filepath.Join(e.lockDir, "api.backoff"), &b)
	if b.Lock != "api" || b.Reason != "429 from api.example" || !strings.HasPrefix(b.SetBy, "job harvest (run ") {
		t.Fatalf("backoff file: %+v", b)
	}
	r = e.mustCode(75, "run", "--lock", "api", "checker", "--", "true")
	if !strings.Contains(r.stderr, `reason="backoff: lock group api until `+b.Until.Format(time.RFC3339)+`: 429 from api.example (set by job harvest (run `) {
		t.Fatalf("other job of the group:\n%s", r.stderr)
	}
	e.mustCode(0, "run", "--lock", "other", "unrelated", "--", "true")
	// Shorter: kept.
	r = e.mustCode(0, "backoff", "--lock", "api", "--for", "1s", "--reason", "shorter")
	if !strings.Contains(r.stdout, "already backs off longer") {
		t.Fatalf("a shorter back-off: %s", r.stdout)
	}
	// Shown by status and gate show, and in the metrics.
	if out := e.mustCode(0, "gate", "show").stdout; !strings.Contains(out, "backoff api until") {
		t.Fatalf("gate show:\n%s", out)
	}
	var sj struct {
		Backoffs []backoff.B `json:"backoffs"`
	}
	if err := json.Unmarshal([]byte(e.mustCode(0, "status", "--json", "--no-systemd").stdout), &sj); err != nil || len(sj.Backoffs) != 1 {
		t.Fatalf("status --json backoffs: %+v %v", sj, err)
	}
	m, _ := os.ReadFile(filepath.Join(e.metricDir, "tickgate_checker.prom"))
	_, val, _ := strings.Cut(string(m), `tickgate_backoff_until_timestamp_seconds{job="checker",lock="api"} `)
	val, _, _ = strings.Cut(val, "\n")
	if f, err := strconv.ParseFloat(val, 64); err != nil || f < float64(b.Until.Unix()) || f > float64(b.Until.Unix()+1) {
		t.Fatalf("metrics (want until %s):\n%s", b.Until, m)
	}
	// After it ends, the group runs again.
	untilPast(b.Until, 50*time.Millisecond)
	e.mustCode(0, "run", "--lock", "api", "checker", "--", "true")
	t.Logf("back-off of 2s honoured for %s", time.Since(set).Round(time.Millisecond))

	// An operator clears one early.
	e.mustCode(0, "backoff", "--lock", "api", "--for", "1h", "--reason", "vendor maintenance")
	e.mustCode(75, "run", "--lock", "api", "checker", "--", "true")
	if r := e.mustCode(0, "backoff", "--clear", "--lock", "api"); !strings.Contains(r.stdout, "cleared (was until") {
		t.Fatal(r.stdout)
	}
	e.mustCode(0, "run", "--lock", "api", "checker", "--", "true")
}

// A job that backs off stops its own retries too.
func TestBackoffStopsRetries(t *testing.T) {
	e := newEnv(t)
	count := e.dir + "/count"
	r := e.mustCode(7, "run", "--lock", "api", "--retry-codes", "7", "--retries", "3", "--retry-delay", "100ms", "j", "--",
		"sh", "-c", `echo x >>"$0"; "$1" backoff --for 1h --reason "Retry-After: 3600" >/dev/null; exit 7`, count, bin)
	if n := lines(t, count); n != 1 {
		t.Fatalf("%d attempts after the job backed off", n)
	}
	if st := e.state("j"); st.Result != state.Failed || !strings.Contains(st.Reason, "no more attempts: backoff: lock group api until") {
		t.Fatalf("state: %+v\n%s", st, r.stderr)
	}
}

// Bad requests: refused with a clear message, nothing written.
func TestBackoffRefusals(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"backoff", "--for", "1m", "--reason", "x"}, "--lock NAME: outside a job"},
		{[]string{"backoff", "--lock", "api", "--for", "1m"}, "needs a reason"},
		{[]string{"backoff", "--lock", "api", "--for", "30d", "--reason", "x"}, "more than 168h0m0s ahead"},
		{[]string{"backoff", "--lock", "api", "--for", "1m", "--until", "+2m", "--reason", "x"}, "one of --for DURATION or --until TIME"},
		{[]string{"backoff", "--lock", "a/b", "--for", "1m", "--reason", "x"}, "invalid lock name"},
	} {
		r := e.mustCode(64, c.args...)
		if !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: %s", c.args, r.stderr)
		}
	}
	// Inside a job, without the control descriptor's socket (fd 4 is a file).
	r := e.run("run", "j", "--", "sh", "-c", `exec 4</dev/null; "$0" backoff --for 1m --reason x`, bin)
	if r.code != 1 || !strings.Contains(r.stderr, "is not tickgate's control socket") {
		t.Fatalf("%d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(e.lockDir, "j.backoff")); err == nil {
		t.Fatal("a refused back-off was written")
	}
}
