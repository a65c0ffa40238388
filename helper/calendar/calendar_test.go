package calendar

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/helper/sysprog"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      string
		err       bool
	}{
		{name: "utc host", want: "2026-11-24T04:46:30Z", out: `  Original form: *:*:0/10
Normalized form: *-*-* *:*:00/10
    Next elapse: Tue 2026-11-24 04:46:30 UTC
       From now: 5s left
`},
		{name: "zone host, earliest of two", want: "2026-11-24T04:46:30Z", out: `  Original form: *:*:0/10
Normalized form: *-*-* *:*:00/10
    Next elapse: Tue 2026-11-24 05:46:30 CET
       (in UTC): Tue 2026-11-24 04:46:30 UTC
       From now: 5s left

  Original form: *-*-* 03:00 UTC
Normalized form: *-*-* 03:00:00 UTC
    Next elapse: Wed 2026-11-25 04:00:00 CET
       (in UTC): Wed 2026-11-25 03:00:00 UTC
       From now: 22h left
`},
		{name: "one never", want: "2099-01-01T00:00:00Z", out: `    Next elapse: never
    Next elapse: Thu 2099-01-01 00:00:00 UTC
`},
		{name: "all never", err: true, out: "    Next elapse: never\n"},
		{name: "zone without utc line", err: true, out: "    Next elapse: Tue 2026-11-24 05:46:30 CET\n"},
		{name: "garbage", err: true, out: "    Next elapse: Tuesday UTC\n"},
		{name: "empty", err: true, out: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all, err := parseAll([]byte(tc.out))
			if err == nil && len(all) == 0 {
				err = ErrNever
			}
			if tc.err {
				if err == nil {
					t.Fatalf("parse: got %v, want an error", all)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := all[0]; got.Format(time.RFC3339) != tc.want {
				t.Fatalf("parse: got %s, want %s", got.Format(time.RFC3339), tc.want)
			}
		})
	}
}

// hostZone is the host's time zone as systemd reads it (/etc/localtime),
// whatever TZ says.
func hostZone(t *testing.T) *time.Location {
	data, err := os.ReadFile("/etc/localtime")
	if err != nil {
		return time.UTC
	}
	loc, err := time.LoadLocationFromTZData("host", data)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestNextAgainstSystemd asks the real systemd-analyze, with zones named in
// the expressions and in the host's zone. A TZ in the helper's environment
// changes nothing: the timer reads its schedule in the host's zone, and so
// does the helper.
// Every iteration, as systemd 252 (Debian 12) and 257 (Debian 13) name them.
func TestParseIterations(t *testing.T) {
	for name, iter := range map[string]string{"systemd 252": "Iter. #", "systemd 257": "Iteration #"} {
		t.Run(name, func(t *testing.T) {
			out := "  Original form: *:*:0/10\nNormalized form: *-*-* *:*:00/10\n" +
				"    Next elapse: Sun 2026-12-06 23:53:40 UTC\n       From now: 8s left\n" +
				"   " + iter + "2: Sun 2026-12-06 23:53:50 UTC\n       From now: 18s left\n" +
				"   " + iter + "3: Sun 2026-12-06 23:54:00 CET\n       (in UTC): Sun 2026-12-06 22:54:00 UTC\n"
			all, err := parseAll([]byte(out))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range all {
				got = append(got, e.Format("15:04:05"))
			}
			if want := "22:54:00 23:53:40 23:53:50"; strings.Join(got, " ") != want {
				t.Fatalf("got %s, want %s", strings.Join(got, " "), want)
			}
		})
	}
}

func TestNextAgainstSystemd(t *testing.T) {
	if _, err := sysprog.Find("systemd-analyze"); err != nil {
		t.Fatalf("systemd-analyze is part of the test machine (systemd): %v", err)
	}
	host := hostZone(t)
	for _, tz := range []string{"UTC", "Europe/Berlin", "America/New_York"} {
		t.Run(tz, func(t *testing.T) {
			t.Setenv("TZ", tz)
			got, err := Next(context.Background(), []string{"2099-01-01 00:00:00 UTC", "2098-06-01 12:00:00 UTC"})
			if err != nil {
				t.Fatal(err)
			}
			if want := time.Date(2098, 6, 1, 12, 0, 0, 0, time.UTC); !got.Equal(want) {
				t.Fatalf("Next = %s, want %s", got, want)
			}
			// A zone named in the expression is that zone.
			got, err = Next(context.Background(), []string{"2098-06-01 12:00:00 " + tz})
			if err != nil {
				t.Fatal(err)
			}
			loc, err := time.LoadLocation(tz)
			if err != nil {
				t.Fatal(err)
			}
			if want := time.Date(2098, 6, 1, 12, 0, 0, 0, loc); !got.Equal(want) {
				t.Fatalf("zoned Next = %s, want %s", got, want)
			}
			// A local-time expression is the host's zone, not TZ's.
			got, err = Next(context.Background(), []string{"2098-06-01 12:00:00"})
			if err != nil {
				t.Fatal(err)
			}
			if want := time.Date(2098, 6, 1, 12, 0, 0, 0, host); !got.Equal(want) {
				t.Fatalf("local Next with TZ=%s = %s, want %s (the host's zone)", tz, got, want)
			}
			before := time.Now()
			got, err = Next(context.Background(), []string{"*:*:0/10"})
			if err != nil {
				t.Fatal(err)
			}
			if got.Second()%10 != 0 || !got.After(before.Add(-time.Second)) || got.After(before.Add(11*time.Second)) {
				t.Fatalf("*:*:0/10 next = %s (now %s)", got, before)
			}
		})
	}
	if _, err := Next(context.Background(), []string{"2001-01-01"}); !errors.Is(err, ErrNever) {
		t.Fatalf("a past date: got %v, want ErrNever", err)
	}
	if _, err := Next(context.Background(), []string{"not a calendar"}); err == nil {
		t.Fatal("a bad expression: no error")
	}
}

// TestNeverThroughPath: a systemd-analyze planted first in PATH (a job's
// venv) never runs; the system's does, with none of the environment's
// loader or locale variables.
func TestNeverThroughPath(t *testing.T) {
	dir := t.TempDir()
	proof := filepath.Join(dir, "ran")
	fake := "#!/bin/sh\necho planted > " + proof + "\necho 'Next elapse: Thu 2000-01-01 00:00:00 UTC'\n"
	if err := os.WriteFile(filepath.Join(dir, "systemd-analyze"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	t.Setenv("LD_PRELOAD", filepath.Join(dir, "evil.so"))
	t.Setenv("LANG", "de_DE.UTF-8")
	got, err := Next(context.Background(), []string{"2098-06-01 12:00:00 UTC"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(proof); err == nil {
		t.Fatal("the planted systemd-analyze ran")
	}
	if want := time.Date(2098, 6, 1, 12, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("Next = %s, want %s", got, want)
	}
}

func TestElapses(t *testing.T) {
	got, err := Elapses(context.Background(), []string{"2099-01-01 00:00:00 UTC", "2098-*-01 12:00:00 UTC"}, 4)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, e := range got {
		s = append(s, e.Format(time.RFC3339))
	}
	if want := "2098-01-01T12:00:00Z 2098-02-01T12:00:00Z 2098-03-01T12:00:00Z 2098-04-01T12:00:00Z"; strings.Join(s, " ") != want {
		t.Fatalf("Elapses = %v, want %s", s, want)
	}
	got, err = Elapses(context.Background(), []string{"2098-06-01 10:00:00 UTC", "2098-06-01 12:00:00 Europe/Berlin"}, 5)
	if err != nil || len(got) != 1 || !got[0].Equal(time.Date(2098, 6, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("duplicates across expressions: %v %v", got, err)
	}
}
