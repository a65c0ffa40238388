package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/helper/state"
)

// The last N runs of a job's command are kept in state.json, newest first in
// `tickgate history` and status --json; skips are not runs.
func TestHistory(t *testing.T) {
	e := newEnv(t)
	run := func(code int, args ...string) {
		e.mustCode(code, append(append([]string{"run", "--history", "3"}, args...), "j", "--", "sh", "-c", "exit "+itoa(code))...)
	}
	run(0)
	run(1)
	e.mustCode(0, "gate", "close", "--reason", "x")
	e.mustCode(75, "run", "--history", "3", "j", "--", "true") // a skip: not a run
	e.mustCode(0, "gate", "open")
	run(2)
	run(0)
	var h struct {
		Job  string      `json:"job"`
		Runs []state.Run `json:"runs"`
	}
	if err := json.Unmarshal([]byte(e.mustCode(0, "history", "--json", "j").stdout), &h); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range h.Runs {
		got = append(got, r.Result+":"+itoa(*r.ExitCode))
	}
	if h.Job != "j" || strings.Join(got, " ") != "success:0 failed:2 failed:1" {
		t.Fatalf("history (newest first, 3 kept): %v", got)
	}
	out := e.mustCode(0, "history", "--limit", "1", "j").stdout
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "STARTED") || !strings.Contains(lines[1], "success") {
		t.Fatalf("history --limit 1:\n%s", out)
	}
	var sj struct {
		Jobs []struct {
			History []state.Run `json:"history"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(e.mustCode(0, "status", "--json", "--no-systemd", "--history", "2").stdout), &sj); err != nil ||
		len(sj.Jobs) != 1 || len(sj.Jobs[0].History) != 2 || sj.Jobs[0].History[0].Result != "success" {
		t.Fatalf("status --json history: %+v %v", sj, err)
	}
	if r := e.mustCode(64, "history", "nosuch"); !strings.Contains(r.stderr, `unknown job "nosuch"`) {
		t.Fatal(r.stderr)
	}
	e.mustCode(64, "run", "--history", "0", "j", "--", "true")
}
