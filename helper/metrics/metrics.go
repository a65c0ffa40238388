// Package metrics writes a job's Prometheus textfile-collector file,
// METRICS_DIR/tickgate_JOB.prom, atomically.
//
// It formats the text exposition by hand: client_golang's WriteToTextfile
// added ~5 ms and ~5 MB RSS to every tick (measured, see docs/design/tick-floor.md),
// more than the whole budget of a tick. Tests check the output with
// Prometheus' own parser.
package metrics

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tickgate/tickgate/helper/gate"
	"github.com/tickgate/tickgate/helper/safefs"
	"github.com/tickgate/tickgate/helper/state"
)

// Path is the job's textfile.
func Path(dir, job string) string { return filepath.Join(dir, "tickgate_"+job+".prom") }

// Snapshot is what one file reports.
type Snapshot struct {
	Job       string // the job's name as the caller knows it, never state content
	State     *state.State
	Done      bool
	Halted    bool
	Heartbeat time.Time
	// BackoffUntil is when the job's lock group's back-off ends (zero: none).
	BackoffUntil time.Time
	// GateClosedSince is when the gate that stops the job now closed, or
	// when it paused the job (zero: the gate lets it run).
	GateClosedSince time.Time
}

type metric struct {
	name, help, typ string
	value           float64
}

func ts(t *time.Time) float64 {
	if t == nil || t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func nonZero(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Render returns the exposition text for a snapshot.
func Render(s Snapshot) []byte {
	st := s.State
	var lastRun, lastDur, lastCode float64
	if r := st.LastRun; r != nil {
		lastRun = ts(r.StartedAt)
		lastDur = r.DurationSeconds
		if r.ExitCode != nil {
			lastCode = float64(*r.ExitCode)
		}
	}
	ms := []metric{
		{"tickgate_heartbeat_timestamp_seconds", "Unix time of the job's last tick, run or skip; stays fresh while the job is gated on purpose.", "gauge", float64(s.Heartbeat.UnixNano()) / 1e9},
		{"tickgate_last_run_timestamp_seconds", "Unix time the job's command last started (0 = never).", "gauge", lastRun},
		{"tickgate_last_success_timestamp_seconds", "Unix time of the last run whose exit code was ok or done (0 = never).", "gauge", ts(st.LastSuccessAt)},
		{"tickgate_last_duration_seconds", "Wall time of the last run of the command.", "gauge", lastDur},
		{"tickgate_last_exit_code", "Exit code of the last run of the command (128+N for signal N).", "gauge", lastCode},
		{"tickgate_consecutive_failures", "Failed runs in a row since the last success.", "gauge", float64(st.ConsecutiveFailures)},
		{"tickgate_done", "1 while the done marker is set (job drained, never runs again until cleared).", "gauge", b2f(s.Done)},
		{"tickgate_halted", "1 while the halted marker is set (breaker tripped until cleared).", "gauge", b2f(s.Halted)},
		{"tickgate_last_skipped", "1 if the last tick was skipped (gate, marker, rollout window, lock busy).", "gauge", b2f(st.Result == state.Skipped)},
		{"tickgate_runs_total", "Runs of the command.", "counter", float64(st.RunsTotal)},
		{"tickgate_failures_total", "Failed runs of the command.", "counter", float64(st.FailuresTotal)},
		{"tickgate_skips_total", "Ticks that did not run the command.", "counter", float64(st.SkipsTotal)},
		{"tickgate_next_run_timestamp_seconds", "Unix time the job's schedule next elapses, as of its last tick (0 = unknown); its timer's random delay comes on top.", "gauge", ts(st.NextDue)},
		{"tickgate_expected_interval_seconds", "The longest gap between two elapses of the job's schedule (over its next 50): a run should complete within a small multiple of it.", "gauge", st.ExpectedInterval},
		{"tickgate_gate_closed_since_timestamp_seconds", "Unix time the gate stopping this job closed, or paused it (0 = the gate lets it run).", "gauge", ts(nonZero(s.GateClosedSince))},
		{"tickgate_backoff_until_timestamp_seconds", "Unix time the job's lock group's back-off ends (0 = none); the job skips until then.", "gauge", ts(nonZero(s.BackoffUntil))},
		{"tickgate_retries_total", "Attempts that failed with a retry code and were tried again within their tick.", "counter", float64(st.RetriesTotal)},
	}
	labels := fmt.Sprintf(`{job=%s,lock=%s}`, quote(s.Job), quote(st.Lock))
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s%s %s\n", m.name, m.help, m.name, m.typ, m.name, labels,
			strconv.FormatFloat(m.value, 'g', -1, 64))
	}
	return []byte(b.String())
}

// quote escapes a label value per the text exposition format.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// Write replaces the job's file (mode 0644 for node_exporter), creating dir
// if needed. The directory must be one no job's user can write to. Call it
// under the job's state lock: its temp file has one fixed name, which the
// next write removes if a SIGKILLed writer left it (the directory, shared by
// every job, is never listed).
//
// The file is derived data, rebuilt from state.json at every tick, so it is
// written without fsync (temp file, rename): a reader never sees a torn
// file, and after a power loss the next tick rewrites it. state.json and the
// markers stay durable; this saves a tick two of its four fsyncs.
func Write(dir string, s Snapshot, owners *safefs.Owners) error {
	if err := state.ValidName("job", s.Job); err != nil {
		return err
	}
	d, err := safefs.OpenRoot(dir, true, 0o755)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Trusted(owners); err != nil {
		return err
	}
	return d.WriteReplaceHeld(filepath.Base(Path(dir, s.Job)), Render(s), 0o644)
}

// WriteJob writes the file for a job's state, reading its markers from the
// job's directory. gateSince is GateClosedSince of the gate the caller read.
func WriteJob(dir string, job *state.Job, st *state.State, heartbeat, backoffUntil, gateSince time.Time, owners *safefs.Owners) error {
	return Write(dir, Snapshot{Job: job.Name, State: st, Done: job.HasMarker(state.MarkerDone),
		Halted: job.HasMarker(state.MarkerHalted), Heartbeat: heartbeat, BackoffUntil: backoffUntil,
		GateClosedSince: gateSince}, owners)
}

// GateClosedSince is since when gate g has been closed, or has paused job
// (zero if it lets the job run, or is nil: unreadable). A tick passes the
// gate it was admitted by rather than read the file a third time.
func GateClosedSince(g *gate.Gate, job string, now time.Time) time.Time {
	if g == nil {
		return time.Time{}
	}
	if g.ClosedNow(now) {
		if g.Since != nil {
			return *g.Since
		}
		return now
	}
	if p, ok := g.Paused[job]; ok {
		return p.Since
	}
	return time.Time{}
}
