package gate

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// Whatever the parser accepts, it accepts again after a write, unchanged;
// nothing makes it panic (the seeds are the attack shapes of issue 8).
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{}`, `null`, `{"closed":true,"closed":false}`, `{"Closed":true}`,
		`{"closed":true,"reason":"r","until":"2026-01-01T00:00:00Z","paused":{"a":{"reason":"x","since":"2026-01-01T00:00:00Z"}}}`,
		"{\"reason\":\"\xff\"}", `{"paused":{"a":null}}`, `[1,2]`, `{"x":{"y":{"y":1,"y":2}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(g)
		if err != nil {
			t.Fatalf("marshal %+v: %v", g, err)
		}
		g2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		now := time.Now()
		if g.ClosedNow(now) != g2.ClosedNow(now) || g.Reason != g2.Reason || !reflect.DeepEqual(g.PausedJobs(), g2.PausedJobs()) {
			t.Fatalf("round trip changed the gate: %+v -> %+v", g, g2)
		}
	})
}
