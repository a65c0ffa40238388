package require

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	got, err := Parse(`[{"command": ["/usr/bin/pg_isready", "-q"], "timeout": "5s"}, {"command": ["/bin/true"]},
		{"job": "harvest", "succeeded_within": "6h"}, {"job": "export", "succeeded_within": "1d", "scope": "fleet"}]`)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0].Timeout != 5*time.Second || got[1].Timeout != DefaultTimeout ||
		got[2].Job != "harvest" || got[2].Within != 6*time.Hour || got[2].Scope != Host ||
		got[3].Scope != Fleet || got[3].Within != 24*time.Hour {
		t.Fatalf("Parse = %+v", got)
	}
	for _, c := range []struct{ in, want string }{
		{`[{}]`, "give command or job"},
		{`[{"command": ["/bin/true"], "job": "x"}]`, "not both"},
		{`[{"command": []}]`, "non-empty argv"},
		{`[{"command": ["true"]}]`, "not an absolute path"},
		{`[{"command": ["/bin/true"], "timeout": "0"}]`, "is not within"},
		{`[{"command": ["/bin/true"], "timeout": "11min"}]`, "is not within"},
		{`[{"command": ["/bin/true"], "scope": "host"}]`, "belong to a job requirement"},
		{`[{"job": "x", "succeeded_within": "1h", "timeout": "1s"}]`, "timeout belongs to a command"},
		{`[{"job": "Bad Name", "succeeded_within": "1h"}]`, "job"},
		{`[{"job": "x", "succeeded_within": "0"}]`, "more than 0"},
		{`[{"job": "x", "succeeded_within": "1h", "scope": "rack"}]`, "neither host nor fleet"},
		{`[{"job": "x", "succeeded_within": "soon"}]`, "succeeded_within"},
	} {
		if _, err := Parse(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%s) = %v, want an error with %q", c.in, err, c.want)
		}
	}
}

func TestReasons(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	dep := Requirement{Job: "harvest", Within: 6 * time.Hour, Scope: Host}
	seven := now.Add(-7 * time.Hour)
	fresh := now.Add(-time.Hour)
	for _, c := range []struct {
		got, want string
	}{
		{Stale(dep, &seven, now), "dependency-stale: harvest last succeeded 7h ago (needs 6h)"},
		{Stale(dep, &fresh, now), ""},
		{Stale(dep, nil, now), "dependency-stale: harvest never succeeded (needs 6h)"},
		{Stale(Requirement{Job: "x", Within: 90 * time.Minute, Scope: Fleet}, &seven, now), "dependency-stale: x last succeeded 7h ago on any host (needs 1h30m)"},
		{Failed(Requirement{Command: []string{"/usr/bin/pg_isready"}}, 2, "no response"), "precondition-failed: /usr/bin/pg_isready exited 2: no response"},
		{Failed(Requirement{Command: []string{"/bin/check"}}, 1, ""), "precondition-failed: /bin/check exited 1"},
		{Failed(Requirement{Command: []string{"/bin/check"}, Timeout: 1500 * time.Millisecond}, -1, ""), "precondition-failed: /bin/check timed out after 2s"},
		{Failed(Requirement{Command: []string{"/bin/check"}, Timeout: 300 * time.Millisecond}, -1, ""), "precondition-failed: /bin/check timed out after 300ms"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
