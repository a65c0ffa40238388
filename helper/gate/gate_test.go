package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func tp(t time.Time) *time.Time { return &t }

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		g        Gate
		job      string
		expected time.Duration
		allowed  bool
		prefix   string
	}{
		{"open", Gate{}, "a", 0, true, ""},
		{"closed", Gate{Closed: true, Reason: "deploy 7"}, "a", 0, false, "gate-closed: deploy 7"},
		{"closed until future", Gate{Closed: true, Until: tp(now.Add(time.Minute))}, "a", 0, false, "gate-closed"},
		{"closed until passed", Gate{Closed: true, Until: tp(now.Add(-time.Second))}, "a", 0, true, ""},
		{"this job paused", Gate{Paused: map[string]Pause{"a": {Reason: "db work"}}}, "a", 0, false, "job-paused: db work"},
		{"other job paused", Gate{Paused: map[string]Pause{"b": {}}}, "a", 0, true, ""},
		{"rollout overlaps runtime", Gate{RolloutAt: tp(now.Add(20 * time.Minute))}, "a", 30 * time.Minute, false, "rollout-window"},
		{"rollout after runtime", Gate{RolloutAt: tp(now.Add(40 * time.Minute))}, "a", 30 * time.Minute, true, ""},
		{"rollout, no expected runtime", Gate{RolloutAt: tp(now.Add(time.Minute))}, "a", 0, true, ""},
		{"rollout already started", Gate{RolloutAt: tp(now.Add(-time.Minute))}, "a", time.Second, false, "rollout-window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.g.Evaluate(tt.job, now, tt.expected)
			// An allowed start has no reason at all; a refusal has the prefix.
			if d.Allowed != tt.allowed || (tt.allowed && d.Reason != "") || (!tt.allowed && (tt.prefix == "" || !strings.HasPrefix(d.Reason, tt.prefix))) {
				t.Fatalf("Evaluate = %+v, want allowed=%v reason prefix %q", d, tt.allowed, tt.prefix)
			}
		})
	}
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestLoadProblems(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "gate.json")

	g, exists, err := Load(p)
	if err != nil || exists || g.Closed {
		t.Fatalf("missing file: %+v %v %v, want open gate", g, exists, err)
	}

	write(t, p, `{"closed": true, "reason": "x", "paused": {}}`, 0o644)
	if g, _, err := Load(p); err != nil || !g.Closed {
		t.Fatalf("valid file: %+v %v", g, err)
	}

	cases := []struct {
		name, kind string
		setup      func()
	}{
		{"malformed json", "malformed", func() { write(t, p, `{"closed": tru`, 0o644) }},
		{"wrong type", "malformed", func() { write(t, p, `{"closed": "yes"}`, 0o644) }},
		{"trailing data", "malformed", func() { write(t, p, `{} {}`, 0o644) }},
		{"null document", "malformed", func() { write(t, p, `null`, 0o644) }},
		{"an array", "malformed", func() { write(t, p, `[]`, 0o644) }},
		{"duplicate key", "malformed", func() { write(t, p, `{"closed":true,"closed":false}`, 0o644) }},
		{"duplicate nested key", "malformed", func() {
			write(t, p, `{"paused":{"a":{"reason":"x","reason":"y","since":"2026-01-01T00:00:00Z"}}}`, 0o644)
		}},
		{"key of another case", "malformed", func() { write(t, p, `{"Closed":true}`, 0o644) }},
		{"nested key of another case", "malformed", func() { write(t, p, `{"paused":{"a":{"REASON":"x","since":"2026-01-01T00:00:00Z"}}}`, 0o644) }},
		{"null closed", "malformed", func() { write(t, p, `{"closed":null}`, 0o644) }},
		{"null reason", "malformed", func() { write(t, p, `{"reason":null}`, 0o644) }},
		{"null paused", "malformed", func() { write(t, p, `{"paused":null}`, 0o644) }},
		{"null pause", "malformed", func() { write(t, p, `{"paused":{"a":null}}`, 0o644) }},
		{"bad time", "malformed", func() { write(t, p, `{"until":"tomorrow"}`, 0o644) }},
		{"invalid utf-8", "malformed", func() { write(t, p, "{\"reason\":\"\xff\"}", 0o644) }},
		{"too large", "malformed", func() { write(t, p, `{"reason":"`+strings.Repeat("x", 1<<20)+`"}`, 0o644) }},
		{"symlink", "insecure", func() {
			write(t, p+".real", `{}`, 0o644)
			if err := os.Symlink(p+".real", p); err != nil {
				t.Fatal(err)
			}
		}},
		{"group writable", "insecure", func() { write(t, p, `{}`, 0o664) }},
		{"world writable", "insecure", func() { write(t, p, `{}`, 0o646) }},
		{"foreign owner", "insecure", func() {
			write(t, p, `{}`, 0o644)
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Skipf("chown needs root: %v", err)
			}
		}},
		{"fifo", "insecure", func() {
			os.Remove(p)
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"directory", "insecure", func() { os.Remove(p); os.Mkdir(p, 0o755) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			os.RemoveAll(p)
			c.setup()
			_, _, err := Load(p)
			var pr *Problem
			if !errors.As(err, &pr) || pr.Kind != c.kind {
				t.Fatalf("Load = %v, want a %s problem", err, c.kind)
			}
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}
}

// Fields the strict parser still accepts: unknown keys (kept by writers),
// null for an absent time, and an expired closure.
func TestParseAccepts(t *testing.T) {
	for _, doc := range []string{
		`{}`, `{"closed": false, "until": null, "since": null, "rollout_at": null, "paused": {}}`,
		`{"closed": true, "reason": "r", "until": "2020-01-01T00:00:00Z", "future_field": {"x": [1, 1]}}`,
		`{"paused": {"a": {"reason": "q", "since": "2026-11-23T10:00:00Z"}}, "rollout_reason": "v2"}`,
	} {
		if _, err := Parse([]byte(doc)); err != nil {
			t.Errorf("Parse(%s) = %v", doc, err)
		}
	}
	g, _ := Parse([]byte(`{"closed":true,"Extra":1}`))
	if !g.Closed {
		t.Fatal("closed lost")
	}
}

// A null gate made 'gate close' panic (a nil map write): writers refuse it
// like any malformed file, and --force replaces it.
func TestUpdateNullGate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gate.json")
	write(t, p, "null", 0o644)
	err := Update(context.Background(), p, false, func(g *Gate) error { g.Closed = true; return nil })
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("Update on null = %v, want ErrMalformed", err)
	}
	if err := Update(context.Background(), p, true, func(g *Gate) error { g.Closed = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if g, _, err := Load(p); err != nil || !g.Closed {
		t.Fatalf("after --force: %+v %v", g, err)
	}
}

func TestUpdatePreservesUnknownFieldsModeAndOwner(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gate.json")
	write(t, p, `{"closed": false, "x_note": {"by": "ops"}, "paused": {}}`, 0o600)
	if err := os.Chown(p, 0, 4242); err != nil {
		t.Skipf("chown needs root: %v", err)
	}
	err := Update(context.Background(), p, false, func(g *Gate) error {
		g.Closed, g.Reason = true, "maint"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["x_note"] == nil || raw["closed"] != true || raw["reason"] != "maint" {
		t.Fatalf("fields lost or not written: %s", data)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600 kept", fi.Mode().Perm())
	}
	if gid := fi.Sys().(*syscall.Stat_t).Gid; gid != 4242 {
		t.Fatalf("gid = %d, want 4242 kept", gid)
	}
}

func TestUpdateTightensLooseMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gate.json")
	write(t, p, `{}`, 0o666)
	if err := Update(context.Background(), p, false, func(g *Gate) error { return nil }); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode = %v, want 0644", fi.Mode().Perm())
	}
	if _, _, err := Load(p); err != nil {
		t.Fatalf("rewritten gate not loadable: %v", err)
	}
}

func TestUpdateRefusesMalformedUnlessForced(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gate.json")
	write(t, p, `{"closed": tr`, 0o644)
	err := Update(context.Background(), p, false, func(g *Gate) error { g.Closed = true; return nil })
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("Update on malformed = %v, want ErrMalformed", err)
	}
	if data, _ := os.ReadFile(p); string(data) != `{"closed": tr` {
		t.Fatalf("malformed file was changed: %q", data)
	}
	if err := Update(context.Background(), p, true, func(g *Gate) error { g.Closed = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if g, _, err := Load(p); err != nil || !g.Closed {
		t.Fatalf("forced update: %+v %v", g, err)
	}
}

// Many writers pausing different jobs at once, plus closers: nothing is lost.
func TestUpdateConcurrentWritersLoseNothing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gate.json")
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- Update(context.Background(), p, false, func(g *Gate) error {
				g.Paused[fmt.Sprintf("job%02d", i)] = Pause{Reason: "r", Since: time.Now()}
				if i == n/2 {
					g.Closed, g.Reason = true, "closer"
				}
				return nil
			})
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	g, _, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Paused) != n || !g.Closed {
		t.Fatalf("after %d concurrent writers: %d paused, closed=%v", n, len(g.Paused), g.Closed)
	}
}
