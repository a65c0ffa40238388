package state

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
)

// state.json and markers: no content makes the parsers panic, and what they
// accept survives a write and a read unchanged.
func FuzzParseState(f *testing.F) {
	for _, s := range []string{`{}`, `null`, `{"job":"../../x","result":"running","pid":-1}`,
		`{"job":"a","lock":"a","run_id":"r","result":"success","exit_code":0,"started_at":"2026-01-01T00:00:00Z","last_run":{"result":"failed"}}`,
		`{"consecutive_failures":1e400}`, `{"pid_start":-5}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := Parse(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(st)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		st2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		out2, _ := json.Marshal(st2)
		if string(out) != string(out2) {
			t.Fatalf("round trip changed the state:\n%s\n%s", out, out2)
		}
	})
}

func FuzzParseMarker(f *testing.F) {
	for _, s := range []string{`{}`, `{"at":"2026-01-01T00:00:00Z","reason":"r","exit_code":4,"run_id":"x"}`, `{"at":"bad"}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMarker(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		m2, err := ParseMarker(out)
		if err != nil || !reflect.DeepEqual(m.ExitCode, m2.ExitCode) || m.Reason != m2.Reason || !m.At.Equal(m2.At) {
			t.Fatalf("round trip: %+v -> %+v (%v)", m, m2, err)
		}
	})
}

// ValidName's byte checks match the patterns the docs and the role's
// preflight give, kept here as the reference.
func FuzzNameMatchesPattern(f *testing.F) {
	jobRE := regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
	lockRE := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]*$`)
	for _, s := range []string{"", "a", "A", "nightly-harvest", "api@eu", "-a", ".a", "_a", "@a", "a b", "a/b", "a\n", "é", "a.b_c-d", "Z9@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := nameMatches(s, false), jobRE.MatchString(s); got != want {
			t.Fatalf("job name %q: %v, the pattern says %v", s, got, want)
		}
		if got, want := nameMatches(s, true), lockRE.MatchString(s); got != want {
			t.Fatalf("lock name %q: %v, the pattern says %v", s, got, want)
		}
	})
}
