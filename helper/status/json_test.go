package status

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/systemd"
)

// WriteJSON must print exactly what a json.Encoder indenting by two spaces
// prints (status --json's output before its rows were encoded side by side).
func TestWriteJSONIsTheEncodersOutput(t *testing.T) {
	at := time.Date(2026, 11, 24, 10, 0, 0, 123, time.UTC)
	code := 3
	pid := 4242
	row := func(name string) Job {
		return Job{
			Job: name, Lock: "grp <&> \"q\" é\u2028", Result: "failed", Reason: "exit code 3\nsecond line\ttab",
			ExitCode: &code, StartedAt: &at, FinishedAt: &at, PID: &pid, Running: true,
			Timer:   &systemd.Timer{Unit: "tickgate-" + name + ".timer", ActiveState: "active", NextElapse: &at},
			LastRun: &state.Run{RunID: "abc", Result: "failed", StartedAt: &at, ExitCode: &code},
			Done:    &state.Marker{At: at, Reason: "drained <b>", ExitCode: &code, RunID: "abc"},
			History: []json.RawMessage{stored(t, state.Run{RunID: "x", Result: "success", Reason: "a <b> & \"c\"\n", StartedAt: &at}),
				stored(t, state.Run{RunID: "y", ExitCode: &code})},
			Backoff: &backoff.B{Lock: "grp", Until: at},
			Late:    true, LateWhy: "no success for 2h",
		}
	}
	base := Report{Schema: Schema, Host: "h<1>", Version: "v1", GeneratedAt: at,
		Gate:     GateView{State: "open"},
		Backoffs: []backoff.B{{Lock: "grp", Until: at}}}
	base.Systemd.Reachable = true
	cases := map[string][]Job{
		"nil jobs":   nil,
		"no jobs":    {},
		"one job":    {row("a")},
		"many jobs":  {row("a"), {Job: "b", History: []json.RawMessage{}}, row("c"), {Job: "d"}},
		"empty rows": {{}, {}},
	}
	for name, jobs := range cases {
		t.Run(name, func(t *testing.T) {
			rep := base
			rep.Jobs = jobs
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetIndent("", "  ")
			if err := enc.Encode(&rep); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := rep.WriteJSON(&got); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("WriteJSON differs from the encoder:\n got: %s\nwant: %s", got.String(), want.String())
			}
		})
	}
}

// stored is a run as state.json holds it (state.AddHistory's layout).
func stored(t *testing.T, r state.Run) json.RawMessage {
	t.Helper()
	b, err := json.MarshalIndent(r, "    ", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A run laid out otherwise (edited by hand) keeps its whitespace but is the
// same JSON as the encoder's.
func TestWriteJSONOddHistory(t *testing.T) {
	rep := Report{Jobs: []Job{{Job: "a", History: []json.RawMessage{
		json.RawMessage(`{"run_id": "x",   "result":"success", "nested": {"a": [1, 2, {"b": null}]}}`),
		json.RawMessage("{\n\t\"run_id\": \"y\"\r\n  }"),
		json.RawMessage(`[]`),
	}}}}
	want, err := json.Marshal(&rep)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := rep.WriteJSON(&got); err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got.Bytes(), &g); err != nil {
		t.Fatalf("WriteJSON printed invalid JSON: %v\n%s", err, got.String())
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("WriteJSON printed other JSON:\n got: %s\nwant: %s", got.String(), want)
	}
}

// A history entry that is not JSON fails the encoding, as it does the
// encoder's (HistoryRaw never hands one over).
func TestWriteJSONBadRow(t *testing.T) {
	rep := Report{Jobs: []Job{{Job: "a", History: []json.RawMessage{json.RawMessage("{not json")}}}}
	if err := rep.WriteJSON(&bytes.Buffer{}); err == nil {
		t.Fatal("a row that does not encode was printed")
	}
}
