package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type lateView struct {
	Jobs []struct {
		Job              string  `json:"job"`
		Late             bool    `json:"late"`
		LateWhy          string  `json:"late_why"`
		ExpectedInterval float64 `json:"expected_interval_seconds"`
	} `json:"jobs"`
}

func (e *env) late(t *testing.T, args ...string) lateView {
	t.Helper()
	var v lateView
	out := e.mustCode(0, append([]string{"status", "--json", "--no-systemd"}, args...)...).stdout
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.Jobs) != 1 {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return v
}

// A job is late when it has not succeeded within its schedule's expected
// interval times the tolerance; a gated one is not, and says why. The
// metrics carry what one generic alert rule needs.
func TestLateJobs(t *testing.T) {
	e := newEnv(t)
	e.mustCode(0, "run", "--schedule", "*:*:0/2", "j", "--", "true")
	v := e.late(t, "--tolerance", "1")
	if v.Jobs[0].Late || v.Jobs[0].ExpectedInterval != 2 {
		t.Fatalf("just ran: %+v", v.Jobs[0])
	}
	m, _ := os.ReadFile(filepath.Join(e.metricDir, "tickgate_j.prom"))
	for _, want := range []string{`tickgate_expected_interval_seconds{job="j",lock="j"} 2`, `tickgate_next_run_timestamp_seconds{job="j",lock="j"} 1`,
		`tickgate_gate_closed_since_timestamp_seconds{job="j",lock="j"} 0`} {
		if !strings.Contains(string(m), want) {
			t.Fatalf("metrics lack %q:\n%s", want, m)
		}
	}
	time.Sleep(2500 * time.Millisecond)
	v = e.late(t, "--tolerance", "1")
	if !v.Jobs[0].Late || !strings.HasPrefix(v.Jobs[0].LateWhy, "late: no success for 3s (expected every 2s, tolerance 1x)") {
		t.Fatalf("late: %+v", v.Jobs[0])
	}
	if out := e.mustCode(0, "status", "--no-systemd", "--tolerance", "1").stdout; !strings.Contains(out, "success (0) LATE") {
		t.Fatalf("status:\n%s", out)
	}
	if e.late(t).Jobs[0].Late { // the default tolerance is 2 intervals
		t.Fatal("late after 1.25 intervals with tolerance 2")
	}
	e.mustCode(0, "gate", "close", "--reason", "maintenance")
	v = e.late(t, "--tolerance", "1")
	if v.Jobs[0].Late || !strings.HasPrefix(v.Jobs[0].LateWhy, "not late: the gate is closed") {
		t.Fatalf("gated: %+v", v.Jobs[0])
	}
	e.mustCode(75, "run", "--schedule", "*:*:0/2", "j", "--", "true")
	m, _ = os.ReadFile(filepath.Join(e.metricDir, "tickgate_j.prom"))
	if strings.Contains(string(m), `tickgate_gate_closed_since_timestamp_seconds{job="j",lock="j"} 0`) {
		t.Fatalf("gate closure not in the metrics:\n%s", m)
	}
}
