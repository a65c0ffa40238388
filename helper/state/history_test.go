package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleRun(i int) Run {
	at := time.Date(2026, 11, 24, 8, 0, i, 0, time.UTC)
	code := i % 5
	return Run{RunID: fmt.Sprintf("run%03d", i), Result: Success, Reason: fmt.Sprintf("reason \"%d\"\nline", i),
		StartedAt: &at, FinishedAt: &at, DurationSeconds: float64(i) / 10, ExitCode: &code, Attempt: 1 + i%2}
}

// The lazy path (runs kept raw) and the plain one (every run decoded) write
// the same bytes and read back the same runs, through appends that trim.
func TestLazyHistoryMatchesFullDecode(t *testing.T) {
	for _, n := range []int{0, 1, 2, 49, 50, 51, 120} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			full := &State{Job: "j", Lock: "l", RunsTotal: int64(n)}
			for i := 0; i < n; i++ {
				full.AddHistory(sampleRun(i), 50)
			}
			data, err := full.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			for round := 0; round < 3; round++ {
				lazy, err := parseLazy(data)
				if err != nil {
					t.Fatal(err)
				}
				whole, err := Parse(data)
				if err != nil {
					t.Fatal(err)
				}
				if n > 0 && lazy.History != nil {
					t.Fatalf("round %d: the history was decoded, want it kept raw", round)
				}
				if lazy.HistoryLen() != whole.HistoryLen() || !reflect.DeepEqual(lazy.Runs(), whole.Runs()) {
					t.Fatalf("round %d: lazy runs %d, full %d (or they differ)", round, lazy.HistoryLen(), whole.HistoryLen())
				}
				if whole.HistoryLen() > 0 && !reflect.DeepEqual(lazy.HistoryRun(0), whole.History[0]) {
					t.Fatalf("round %d: HistoryRun(0) differs", round)
				}
				next := sampleRun(1000 + round)
				lazy.AddHistory(next, 50)
				whole.AddHistory(next, 50)
				a, err := lazy.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				b, err := whole.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(a, b) {
					t.Fatalf("round %d: lazy and full writes differ:\n%s\n---\n%s", round, a, b)
				}
				if got := lazy.HistoryLen(); got > 50 || got != whole.HistoryLen() {
					t.Fatalf("round %d: %d runs kept", round, got)
				}
				data = a
			}
		})
	}
}

// A state.json not laid out as tickgate writes it (compact, another key
// order) is decoded whole, and still reads and writes correctly.
func TestLazyHistoryOtherLayouts(t *testing.T) {
	st := &State{Job: "j"}
	for i := 0; i < 3; i++ {
		st.AddHistory(sampleRun(i), 50)
	}
	compact, _ := json.Marshal(st)
	for name, data := range map[string][]byte{
		"compact":       compact,
		"history first": []byte(`{"history": [{"run_id": "a", "result": "success"}], "job": "j", "runs_total": 1}`),
		"no history":    []byte("{\n  \"job\": \"j\"\n}\n"),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := parseLazy(data)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := Parse(data)
			if !reflect.DeepEqual(got.Runs(), want.Runs()) || got.RunsTotal != want.RunsTotal {
				t.Fatalf("parseLazy %+v, Parse %+v", got.Runs(), want.Runs())
			}
		})
	}
}

// threeRuns is a state.json with three runs, and the same with the second
// run's record not JSON.
func threeRuns() (data, notJSON []byte) {
	st := &State{Job: "j"}
	for i := 0; i < 3; i++ {
		st.AddHistory(sampleRun(i), 50)
	}
	data, _ = st.Marshal()
	return data, bytes.Replace(data, []byte(`"run_id": "run001"`), []byte(`"run_id": run001`), 1)
}

// A run record that is JSON but not a run (a hand edit) does not stop the
// tick: it reads as an unknown run and the write keeps state.json valid.
// One that is not JSON at all makes the file corrupt, as a whole decode
// says (Update moves it aside).
func TestLazyHistoryBrokenRun(t *testing.T) {
	data, notJSON := threeRuns()
	if st, err := parseLazy(notJSON); err == nil {
		// Read lazily, the file is not decoded whole: the odd run reads as
		// unknown, and a write of it is refused as not JSON, then repaired.
		if r := st.HistoryRun(1); r.Result != "unknown" {
			t.Fatalf("a run that is not JSON reads as %+v", r)
		}
		st.AddHistory(sampleRun(8), 50)
		out, err := st.Marshal()
		if err != nil || !json.Valid(out) {
			t.Fatalf("write of a file with a run that is not JSON: %v", err)
		}
	}
	notRun := bytes.Replace(data, []byte(`"run_id": "run001"`), []byte(`"run_id": 5`), 1)
	lazy, err := parseLazy(notRun)
	if err != nil {
		t.Fatalf("the head is fine, the odd run is not decoded yet: %v", err)
	}
	lazy.AddHistory(sampleRun(9), 50)
	out, err := lazy.Marshal()
	if err != nil || !json.Valid(out) {
		t.Fatalf("write: %v\n%s", err, out)
	}
	again, err := parseLazy(out) // the odd run is kept as it was, not lost
	if err != nil {
		t.Fatal(err)
	}
	runs := again.Runs()
	if len(runs) != 4 || runs[1].Result != "unknown" || !strings.Contains(runs[1].Reason, "does not decode") || runs[3].RunID != "run009" {
		t.Fatalf("runs after the write: %+v", runs)
	}
}

// Whatever parses both ways reads the same: lazily and whole.
func FuzzParseLazy(f *testing.F) {
	st := &State{Job: "j"}
	for i := 0; i < 3; i++ {
		st.AddHistory(sampleRun(i), 50)
	}
	good, _ := st.Marshal()
	f.Add(good)
	f.Add([]byte("{\n  \"job\": \"j\",\n  \"history\": [\n    {\n    }\n  ]\n}"))
	f.Add([]byte("{\n  \"a\": 1,\n  \"history\": [\n    {\"x\": \"\n    },\n    {\"}\n  ]\n}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		want, err := Parse(data)
		got, lerr := parseLazy(data)
		if lerr == nil {
			// Whatever reads lazily writes valid JSON.
			probe, _ := parseLazy(data)
			probe.AddHistory(sampleRun(1), 3)
			if out, err := probe.Marshal(); err != nil || !json.Valid(out) {
				t.Fatalf("write: %v", err)
			}
		}
		if err != nil {
			return // a file Parse rejects may still read lazily: its write then repairs it
		}
		if lerr != nil {
			t.Fatalf("Parse accepts, parseLazy rejects: %v", lerr)
		}
		for _, raw := range got.rawHistory {
			if !json.Valid(raw) {
				return // hand-made: only looks like tickgate's layout (counted as it looks)
			}
		}
		if got.HistoryLen() != want.HistoryLen() {
			t.Fatalf("runs: lazy %d, full %d", got.HistoryLen(), want.HistoryLen())
		}
		if !reflect.DeepEqual(got.Runs(), want.Runs()) {
			t.Fatalf("runs differ:\n%+v\n%+v", got.Runs(), want.Runs())
		}
		out, err := got.Marshal()
		if err != nil || !json.Valid(out) {
			t.Fatalf("write: %v", err)
		}
	})
}
