// Package timespec parses the durations and points in time that tickgate's
// flags and the gate file accept.
//
// Durations use systemd's time-span syntax (systemd.time(7)), which is also a
// superset of Go's: "90", "90s", "5min", "1h 30m", "2d", "1h30m0s". A bare
// number means seconds. This lets one inventory value feed both a unit's
// RuntimeMaxSec= and the helper's --timeout.
package timespec

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var units = map[string]time.Duration{
	"us": time.Microsecond, "usec": time.Microsecond, "µs": time.Microsecond,
	"ms": time.Millisecond, "msec": time.Millisecond,
	"s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"w": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "weeks": 7 * 24 * time.Hour,
}

// The grammar the role's preflight shares (helper/testdata/contract.json):
// a bare number of seconds, or one or more NUMBER UNIT parts separated by
// spaces; NUMBER is digits with an optional fraction. systemd reads the same
// values (AccuracySec=, RandomizedDelaySec=), so only units both know.
var (
	bareRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
	partRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?) *([a-zµ]+) *`)
)

// ParseDuration parses a non-negative systemd/Go style time span.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.Trim(s, " ")
	if in == "" {
		return 0, fmt.Errorf("invalid duration %q: empty", s)
	}
	if bareRE.MatchString(in) {
		n, _ := strconv.ParseFloat(in, 64)
		if n > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("invalid duration %q: out of range", s)
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	var total time.Duration
	for rest := in; rest != ""; {
		m := partRE.FindStringSubmatch(rest)
		if m == nil {
			if bareRE.MatchString(rest) {
				return 0, fmt.Errorf("invalid duration %q: %q has no unit (in a span of several parts, write e.g. 1h 30min)", s, rest)
			}
			return 0, fmt.Errorf("invalid duration %q: expected NUMBER UNIT at %q (e.g. 90s, 5min, 1h 30min)", s, rest)
		}
		unit, ok := units[m[2]]
		if !ok {
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q (us, ms, s, min, h, d, w)", s, m[2])
		}
		num, _ := strconv.ParseFloat(m[1], 64)
		part := num * float64(unit)
		if part > float64(math.MaxInt64)-float64(total) {
			return 0, fmt.Errorf("invalid duration %q: out of range", s)
		}
		total += time.Duration(part)
		rest = rest[len(m[0]):]
	}
	return total, nil
}

// ParseTime parses an absolute RFC3339 time or a time relative to now:
// "+30m", "+1h 30min", or "now".
func ParseTime(s string, now time.Time) (time.Time, error) {
	in := strings.TrimSpace(s)
	switch {
	case in == "":
		return time.Time{}, fmt.Errorf("invalid time %q: empty (want RFC3339 like 2026-11-23T18:00:00Z, or +30m)", s)
	case in == "now":
		return now, nil
	case strings.HasPrefix(in, "+"):
		d, err := ParseDuration(in[1:])
		if err != nil {
			return time.Time{}, fmt.Errorf("invalid time %q: %v", s, err)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, in)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time %q: want RFC3339 (2026-11-23T18:00:00Z) or relative (+30m)", s)
	}
	return t, nil
}
