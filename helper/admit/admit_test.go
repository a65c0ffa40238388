package admit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/blackout"
	"github.com/tickgate/tickgate/helper/gate"
	"github.com/tickgate/tickgate/helper/require"
	"github.com/tickgate/tickgate/helper/state"
)

type fakeFleet struct {
	last    *time.Time // a job's last success in the fleet
	windows string     // the fleet's blackout windows ("" = none)
	gate    string     // the fleet gate document ("" = open)
	backoff *backoff.B
	err     error
}

func (f fakeFleet) Gate(context.Context) (*gate.Gate, error) {
	if f.err != nil {
		return nil, f.err
	}
	if f.gate == "" {
		return gate.Parse([]byte(`{"closed": false}`))
	}
	return gate.Parse([]byte(f.gate))
}

func (f fakeFleet) Backoff(context.Context, string) (*backoff.B, error) { return f.backoff, f.err }

func (f fakeFleet) LastSuccess(context.Context, string) (*time.Time, error) { return f.last, f.err }

func (f fakeFleet) Blackouts(context.Context) ([]byte, error) {
	if f.windows == "" {
		return []byte("[]"), f.err
	}
	return []byte(f.windows), f.err
}

func TestStepsInOrder(t *testing.T) {
	if got := strings.Join(Steps(), " "); got != "markers host-gate blackout fleet-gate backoff requires deadline" {
		t.Fatalf("Steps() = %s", got)
	}
}

// Each step, alone, says no with its own code and reason; the first one
// that says no decides.
func TestDecide(t *testing.T) {
	now := time.Now().UTC()
	past := now.Add(-2 * time.Hour)
	for _, c := range []struct {
		name    string
		setup   func(t *testing.T, s *Subject)
		step    string
		code    int
		prefix  string
		allowed bool
		warn    string
	}{
		{name: "nothing stops it", setup: func(*testing.T, *Subject) {}, allowed: true},
		{name: "halted marker", setup: func(t *testing.T, s *Subject) { marker(t, s, state.MarkerHalted) }, step: Markers, code: 75, prefix: "halted: "},
		{name: "done marker", setup: func(t *testing.T, s *Subject) { marker(t, s, state.MarkerDone) }, step: Markers, code: 75, prefix: "done: "},
		{name: "gate closed", setup: func(t *testing.T, s *Subject) { writeGate(t, s, `{"closed": true, "reason": "deploy"}`) }, step: HostGate, code: 75, prefix: "gate-closed: deploy"},
		{name: "job paused", setup: func(t *testing.T, s *Subject) {
			writeGate(t, s, `{"paused": {"j": {"reason": "quota", "since": "2026-01-01T00:00:00Z"}}}`)
		}, step: HostGate, code: 75, prefix: "job-paused: quota"},
		{name: "gate unusable", setup: func(t *testing.T, s *Subject) { writeGate(t, s, `{"closed": tru`) }, step: HostGate, code: 78, prefix: "gate-unusable: "},
		{name: "gate unusable, --gate-fail open", setup: func(t *testing.T, s *Subject) {
			writeGate(t, s, `{"closed": tru`)
			s.Policy.GateFailOpen = true
		}, allowed: true, warn: "gate-unusable: "},
		{name: "fleet gate closed", setup: func(t *testing.T, s *Subject) {
			s.Fleet = fakeFleet{gate: `{"closed": true, "reason": "release"}`}
		}, step: FleetGate, code: 75, prefix: "gate-closed: fleet: release"},
		{name: "fleet down", setup: func(t *testing.T, s *Subject) { s.Fleet = fakeFleet{err: errors.New("timed out")} }, step: FleetGate, code: 78, prefix: "fleet-gate-unreachable: timed out"},
		{name: "fleet down, --gate-fail open", setup: func(t *testing.T, s *Subject) {
			s.Fleet, s.Policy.GateFailOpen = fakeFleet{err: errors.New("timed out")}, true
		}, allowed: true, warn: "fleet-gate-unreachable: timed out"},
		{name: "fleet down, a fleet lock group, --gate-fail open", setup: func(t *testing.T, s *Subject) {
			s.Fleet, s.FleetLock, s.Policy.GateFailOpen = fakeFleet{err: errors.New("timed out")}, true, true
		}, step: FleetGate, code: 78, prefix: "fleet-lock-unavailable: timed out"},
		{name: "fleet down, a floating singleton", setup: func(t *testing.T, s *Subject) {
			s.Fleet, s.Singleton = fakeFleet{err: errors.New("timed out")}, true
		}, step: FleetGate, code: 78, prefix: "fleet-slot-unavailable: timed out"},
		{name: "host back-off", setup: func(t *testing.T, s *Subject) {
			if _, err := backoff.Extend(context.Background(), s.LockDir, backoff.B{Lock: "g", Until: now.Add(time.Hour), Reason: "429", SetBy: "operator", SetAt: now}, nil); err != nil {
				t.Fatal(err)
			}
		}, step: Backoff, code: 75, prefix: "backoff: lock group g until"},
		{name: "fleet back-off of a fleet lock group", setup: func(t *testing.T, s *Subject) {
			s.Fleet, s.FleetLock = fakeFleet{backoff: &backoff.B{Lock: "g", Until: now.Add(time.Hour), Reason: "quota", SetBy: "job x"}}, true
		}, step: Backoff, code: 75, prefix: "backoff: lock group g until"},
		{name: "fleet back-off of a host lock group", setup: func(t *testing.T, s *Subject) {
			s.Fleet = fakeFleet{backoff: &backoff.B{Lock: "g", Until: now.Add(time.Hour), Reason: "quota", SetBy: "job x"}}
		}, allowed: true},
		{name: "missed-deadline", setup: func(t *testing.T, s *Subject) { s.Due, s.StartDeadline = &past, time.Hour }, step: Deadline, code: 75, prefix: "missed-deadline: due "},
		{name: "within the deadline", setup: func(t *testing.T, s *Subject) { s.Due, s.StartDeadline = &past, 3*time.Hour }, allowed: true},
		{name: "no due: a start off the schedule", setup: func(t *testing.T, s *Subject) { s.StartDeadline = time.Minute }, allowed: true},
		{name: "forced: gate closed", setup: func(t *testing.T, s *Subject) {
			writeGate(t, s, `{"closed": true, "reason": "deploy"}`)
			s.Force = true
		}, allowed: true, warn: "gate-closed: deploy; running anyway (tickgate start --force)"},
		{name: "forced: job paused", setup: func(t *testing.T, s *Subject) {
			writeGate(t, s, `{"paused": {"j": {"reason": "quota", "since": "2026-01-01T00:00:00Z"}}}`)
			s.Force = true
		}, allowed: true, warn: "job-paused: quota"},
		{name: "forced: fleet gate closed", setup: func(t *testing.T, s *Subject) {
			s.Fleet, s.Force = fakeFleet{gate: `{"closed": true, "reason": "release"}`}, true
		}, allowed: true, warn: "gate-closed: fleet: release"},
		{name: "forced: a marker still stops it", setup: func(t *testing.T, s *Subject) {
			marker(t, s, state.MarkerHalted)
			s.Force = true
		}, step: Markers, code: 75, prefix: "halted: "},
		{name: "forced: an unusable gate still stops it", setup: func(t *testing.T, s *Subject) {
			writeGate(t, s, `{"closed": tru`)
			s.Force = true
		}, step: HostGate, code: 78, prefix: "gate-unusable: "},
		{name: "forced: a fleet it cannot ask still stops a floating singleton", setup: func(t *testing.T, s *Subject) {
			s.Fleet, s.Singleton, s.Force = fakeFleet{err: errors.New("timed out")}, true, true
		}, step: FleetGate, code: 78, prefix: "fleet-slot-unavailable: timed out"},
		{name: "forced: a back-off still stops it", setup: func(t *testing.T, s *Subject) {
			if _, err := backoff.Extend(context.Background(), s.LockDir, backoff.B{Lock: "g", Until: now.Add(time.Hour), Reason: "429", SetBy: "operator", SetAt: now}, nil); err != nil {
				t.Fatal(err)
			}
			s.Force = true
		}, step: Backoff, code: 75, prefix: "backoff: lock group g until"},
		{name: "blackout open now", setup: func(t *testing.T, s *Subject) {
			s.Blackouts = []blackout.Window{window("db-maint", now.Add(-30*time.Minute), time.Hour)}
		}, step: Blackout, code: 75, prefix: "blackout: db-maint until " + now.Add(30*time.Minute).Truncate(time.Second).Format(time.RFC3339)},
		{name: "blackout over", setup: func(t *testing.T, s *Subject) {
			s.Blackouts = []blackout.Window{window("db-maint", now.Add(-2*time.Hour), time.Hour)}
		}, allowed: true},
		{name: "blackout opens within the expected runtime", setup: func(t *testing.T, s *Subject) {
			s.Blackouts = []blackout.Window{window("db-maint", now.Add(10*time.Minute), time.Hour)}
			s.Policy.ExpectedRuntime = 30 * time.Minute
		}, step: Blackout, code: 75, prefix: "blackout: db-maint starts "},
		{name: "blackout opens after the expected runtime", setup: func(t *testing.T, s *Subject) {
			s.Blackouts = []blackout.Window{window("db-maint", now.Add(10*time.Minute), time.Hour)}
			s.Policy.ExpectedRuntime = 5 * time.Minute
		}, allowed: true},
		{name: "forced: blackout open now", setup: func(t *testing.T, s *Subject) {
			s.Blackouts = []blackout.Window{window("db-maint", now.Add(-30*time.Minute), time.Hour)}
			s.Force = true
		}, allowed: true, warn: "blackout: db-maint until"},
		{name: "blackout that cannot be evaluated", setup: func(t *testing.T, s *Subject) {
			s.Blackouts = []blackout.Window{{Name: "bad", Calendar: "not a calendar", Duration: time.Hour}}
		}, step: Blackout, code: 78, prefix: "gate-unusable: blackout window bad: "},
		{name: "a fleet blackout window covers the job", setup: func(t *testing.T, s *Subject) {
			s.Fleet = fakeFleet{windows: `[{"name":"freeze","calendar":"` + now.Add(-time.Minute).UTC().Format("2006-01-02 15:04:05") + ` UTC","duration":"1h","locks":["g"]}]`}
		}, step: FleetGate, code: 75, prefix: "blackout: fleet: freeze until "},
		{name: "a fleet blackout window of other jobs", setup: func(t *testing.T, s *Subject) {
			s.Fleet = fakeFleet{windows: `[{"name":"freeze","calendar":"` + now.Add(-time.Minute).UTC().Format("2006-01-02 15:04:05") + ` UTC","duration":"1h","jobs":["other"]}]`}
		}, allowed: true},
		{name: "fleet blackout windows that do not parse", setup: func(t *testing.T, s *Subject) {
			s.Fleet = fakeFleet{windows: `[{"name":"x"}]`}
		}, step: FleetGate, code: 78, prefix: "gate-unusable: fleet: the fleet's blackout windows: "},
		{name: "a dependency that never succeeded on this host", setup: func(t *testing.T, s *Subject) {
			s.Requires = []require.Requirement{{Job: "dep", Within: time.Hour, Scope: require.Host}}
		}, step: Requires, code: 75, prefix: "dependency-stale: dep never succeeded (needs 1h)"},
		{name: "a dependency that succeeded on this host within its window", setup: func(t *testing.T, s *Subject) {
			s.Requires = []require.Requirement{{Job: "dep", Within: time.Hour, Scope: require.Host}}
			succeeded(t, s, "dep", now.Add(-10*time.Minute))
		}, allowed: true},
		{name: "a dependency that succeeded too long ago", setup: func(t *testing.T, s *Subject) {
			s.Requires = []require.Requirement{{Job: "dep", Within: time.Hour, Scope: require.Host}}
			succeeded(t, s, "dep", now.Add(-7*time.Hour))
		}, step: Requires, code: 75, prefix: "dependency-stale: dep last succeeded 7h ago (needs 1h)"},
		{name: "a fleet dependency", setup: func(t *testing.T, s *Subject) {
			recent := now.Add(-time.Minute)
			s.Fleet, s.Requires = fakeFleet{last: &recent}, []require.Requirement{{Job: "dep", Within: time.Hour, Scope: require.Fleet}}
		}, allowed: true},
		{name: "a fleet dependency, the fleet down, --gate-fail open", setup: func(t *testing.T, s *Subject) {
			s.Fleet, s.Policy.GateFailOpen = fakeFleet{err: errors.New("timed out")}, true
			s.Requires = []require.Requirement{{Job: "dep", Within: time.Hour, Scope: require.Fleet}}
		}, step: Requires, code: 75, prefix: "dependency-stale: dep: last success not known: ", warn: "fleet-gate-unreachable: timed out"},
		{name: "a check command is not asked here", setup: func(t *testing.T, s *Subject) {
			s.Requires = []require.Requirement{{Command: []string{"/bin/false"}}}
		}, allowed: true},
		{name: "the first that says no decides", setup: func(t *testing.T, s *Subject) {
			marker(t, s, state.MarkerHalted)
			writeGate(t, s, `{"closed": true, "reason": "deploy"}`)
			s.Due, s.StartDeadline = &past, time.Minute
		}, step: Markers, code: 75, prefix: "halted: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			j, err := state.Store{Dir: dir + "/state"}.Job("j", true)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			s := Subject{Job: "j", Dir: j, GatePath: dir + "/gate.json", Lock: "g", LockDir: dir + "/lock", States: state.Store{Dir: dir + "/state"}}
			c.setup(t, &s)
			d := Decide(context.Background(), s, now)
			if d.Allowed != c.allowed || d.Step != c.step || d.Code != c.code || !strings.HasPrefix(d.Reason, c.prefix) {
				t.Fatalf("Decide = %+v, want allowed %v step %q code %d reason %q...", d, c.allowed, c.step, c.code, c.prefix)
			}
			if (c.warn == "") != (len(d.Warnings) == 0) || c.warn != "" && !strings.HasPrefix(d.Warnings[0], c.warn) {
				t.Fatalf("warnings %q, want %q", d.Warnings, c.warn)
			}
		})
	}
}

// succeeded records a success of job at in its state.json.
func succeeded(t *testing.T, s *Subject, job string, at time.Time) {
	t.Helper()
	j, err := s.States.Job(job, true)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := j.Update(context.Background(), func(st *state.State) { st.LastSuccessAt = &at }, state.Hooks{}); err != nil {
		t.Fatal(err)
	}
}

// window is a one-time window opening at start (systemd's calendar syntax
// for one moment, in UTC).
func window(name string, start time.Time, d time.Duration) blackout.Window {
	return blackout.Window{Name: name, Calendar: start.UTC().Format("2006-01-02 15:04:05") + " UTC", Duration: d}
}

func marker(t *testing.T, s *Subject, name string) {
	t.Helper()
	if err := s.Dir.Locked(context.Background(), func() error {
		return s.Dir.WriteMarker(name, state.Marker{At: time.Now(), Reason: "x"})
	}); err != nil {
		t.Fatal(err)
	}
}

func writeGate(t *testing.T, s *Subject, doc string) {
	t.Helper()
	if err := os.WriteFile(filepath.Clean(s.GatePath), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}
