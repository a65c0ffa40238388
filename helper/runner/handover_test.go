package runner

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tickgate/tickgate/helper/state"
)

// A gate skip of a slot due before the deploy handed the job over from cron
// (replaces_cron) owes no catch-up: cron ran that slot. One due after does.
func TestNoCatchUpOwedForASlotCronRan(t *testing.T) {
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate.json")
	if err := os.MkdirAll(filepath.Join(dir, "handover"), 0o755); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 2, 0, 30, 0, time.UTC)
	rec := `{"job": "handed", "at": ` + strconv.FormatFloat(float64(at.Unix()), 'f', 3, 64) + `}`
	if err := os.WriteFile(filepath.Join(dir, "handover", "handed.json"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		due  time.Time
		owed bool
	}{
		{at.Add(-30 * time.Second), false},
		{at, false},
		{at.Add(30 * time.Second), true},
	} {
		r := &runner{c: Config{Job: "handed", GatePath: gate, CatchUp: true}}
		due := c.due
		r.sched.due = &due
		s := &state.State{}
		r.noteCatchUp(s, state.Skipped, "gate-closed: deploy-1", false)
		if (s.CatchUp != nil) != c.owed {
			t.Errorf("slot %s (handed over %s): owed %v, want %v", c.due.Format(time.TimeOnly), at.Format(time.TimeOnly), s.CatchUp != nil, c.owed)
		}
	}
	// No record: owed as before.
	r := &runner{c: Config{Job: "other", GatePath: gate, CatchUp: true}}
	due := at.Add(-time.Hour)
	r.sched.due = &due
	s := &state.State{}
	r.noteCatchUp(s, state.Skipped, "gate-closed: deploy-1", false)
	if s.CatchUp == nil {
		t.Error("a job with no handover record owes no catch-up for a gate skip")
	}
}
