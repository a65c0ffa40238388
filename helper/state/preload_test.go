package state

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// storeWith gives a job whose state.json holds data (none if nil).
func storeWith(t *testing.T, data []byte) *Job {
	t.Helper()
	s := Store{Dir: t.TempDir()}
	j, err := s.Job("j", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	if data != nil {
		if err := os.WriteFile(filepath.Join(s.Dir, "j", "state.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return j
}

func stateFileOf(t *testing.T, j *Job) []byte {
	t.Helper()
	data, err := os.ReadFile(j.Path("state.json"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// An Update given what Preload read writes exactly what one without it
// writes when the file did not change in between; when it did (another
// writer, the tick's own "running" record), the preload is not used and the
// update applies to the file as it is now.
func TestPreloadIsUsedOnlyForTheSameBytes(t *testing.T) {
	ctx := context.Background()
	st := &State{Job: "j", RunsTotal: 7}
	for i := 0; i < 50; i++ {
		st.AddHistory(sampleRun(i), 50)
	}
	data, _ := st.Marshal()
	data = append(data, '\n')
	bump := func(s *State) { s.RunsTotal++; s.AddHistory(sampleRun(99), 50) }

	plain, pre := storeWith(t, data), storeWith(t, data)
	if _, err := plain.Update(ctx, bump, Hooks{}); err != nil {
		t.Fatal(err)
	}
	p := pre.Preload()
	if p == nil || p.st == nil || !p.st.rawValid {
		t.Fatalf("preload of a valid state: %+v", p)
	}
	if _, err := pre.Update(ctx, bump, Hooks{Pre: p}); err != nil {
		t.Fatal(err)
	}
	if p.st != nil {
		t.Fatal("the preloaded state was not used")
	}
	// (Each write stamps its own updated_at.)
	stamp := regexp.MustCompile(`"updated_at": "[^"]*"`)
	if a, b := stamp.ReplaceAll(stateFileOf(t, plain), nil), stamp.ReplaceAll(stateFileOf(t, pre), nil); !bytes.Equal(a, b) {
		t.Fatalf("with the preload the file differs:\n%s\n---\n%s", a, b)
	}

	// Changed after the preload: the update sees the change.
	stale := pre.Preload()
	if _, err := pre.Update(ctx, func(s *State) { s.RunsTotal = 100 }, Hooks{}); err != nil {
		t.Fatal(err)
	}
	got, err := pre.Update(ctx, bump, Hooks{Pre: stale})
	if err != nil {
		t.Fatal(err)
	}
	if got.RunsTotal != 101 || stale.st == nil {
		t.Fatalf("a stale preload was used: runs_total %d", got.RunsTotal)
	}
}

// A run kept raw that is not JSON is not vouched for by the preload: the
// write still checks, and repairs, as without it; no state yet, or one
// that does not decode, preloads nothing.
func TestPreloadOfBrokenOrMissingState(t *testing.T) {
	_, notJSON := threeRuns()
	j := storeWith(t, notJSON)
	p := j.Preload()
	if p != nil && p.st.rawValid {
		t.Fatal("a history with a run that is not JSON was marked valid")
	}
	if _, err := j.Update(context.Background(), func(s *State) { s.AddHistory(sampleRun(8), 50) }, Hooks{Pre: p}); err != nil {
		t.Fatal(err)
	}
	if out := stateFileOf(t, j); !json.Valid(out) {
		t.Fatalf("written state is not JSON:\n%s", out)
	}
	if storeWith(t, nil).Preload() != nil || storeWith(t, []byte("{not json")).Preload() != nil {
		t.Fatal("a missing or undecodable state preloaded something")
	}
}
