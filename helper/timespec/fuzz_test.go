package timespec

import (
	"regexp"
	"testing"
	"time"
)

// Durations: never negative, never a panic, and a parsed span written back
// in Go's form parses to the same value (within 1 µs: Go writes fractions;
// spans under 1 µs have no unit in the contract).
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90", "90s", "5min", "1h 30m", "1h 30", "2d", "1h30m0s", "", " ", "-1s", "1e9", "9999999999999h", "1.5h", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v < 0", s, d)
		}
		if d < time.Microsecond {
			return
		}
		d2, err := ParseDuration(d.String())
		if diff := d2 - d; err != nil || diff > time.Microsecond || diff < -time.Microsecond {
			t.Fatalf("ParseDuration(%q) = %v, but %q gives %v, %v", s, d, d.String(), d2, err)
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"now", "+30m", "+1h 30min", "2026-11-23T18:00:00Z", "2026-11-23T18:00:00+01:00", "+", "+-1s", "tomorrow"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTime(s, now)
		if err != nil {
			return
		}
		if len(s) > 0 && s[0] == '+' && tm.Before(now) {
			t.Fatalf("ParseTime(%q) = %v, before now", s, tm)
		}
	})
}

// The hand-written scanners match the grammar's patterns, kept here as the
// reference: bare's whole-string match, and part's submatches and length.
func FuzzScannersMatchPatterns(f *testing.F) {
	bareRE := regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
	partRE := regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?) *([a-zµ]+) *`)
	for _, s := range []string{"90", "1.5", "1.", ".5", "1..5", "90s", "5 min  1h", "1.5µs", "1µ", "1 µ", "2x\xc2", "1\xc2\xb5s", "1 Min", "1.5.s", "12", " 1s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := bare(s), bareRE.MatchString(s); got != want {
			t.Fatalf("bare(%q) = %v, the pattern says %v", s, got, want)
		}
		num, unit, n := part(s)
		m := partRE.FindStringSubmatch(s)
		if m == nil {
			if n != 0 {
				t.Fatalf("part(%q) = %q %q %d, the pattern does not match", s, num, unit, n)
			}
			return
		}
		if num != m[1] || unit != m[2] || n != len(m[0]) {
			t.Fatalf("part(%q) = %q %q %d, the pattern says %q %q %d", s, num, unit, n, m[1], m[2], len(m[0]))
		}
	})
}
