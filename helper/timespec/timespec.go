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
// values (AccuracySec=, RandomizedDelaySec=), so only units both know:
//
//	bare  ^[0-9]+(\.[0-9]+)?$
//	part  ^([0-9]+(?:\.[0-9]+)?) *([a-zµ]+) *
//
// Scanned by hand, not by regexp: compiling the patterns at package
// initialisation cost every tickgate process ~15 µs (the tests hold them as
// the reference).

// number is the length of the NUMBER s starts with (0: none).
func number(s string) int {
	i := digits(s)
	if i > 0 && i < len(s) && s[i] == '.' {
		if f := digits(s[i+1:]); f > 0 {
			i += 1 + f
		}
	}
	return i
}

func digits(s string) int {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}

// bare says whether s is a NUMBER and nothing else.
func bare(s string) bool {
	n := number(s)
	return n > 0 && n == len(s)
}

// part splits the NUMBER UNIT part s starts with: the number, the unit, and
// the length of the part with the spaces after it (0: s starts with none).
func part(s string) (num, unit string, n int) {
	i := number(s)
	if i == 0 {
		return "", "", 0
	}
	j := i
	for j < len(s) && s[j] == ' ' {
		j++
	}
	k := j
	for k < len(s) {
		if 'a' <= s[k] && s[k] <= 'z' {
			k++
		} else if strings.HasPrefix(s[k:], "µ") {
			k += len("µ")
		} else {
			break
		}
	}
	if k == j {
		return "", "", 0
	}
	n = k
	for n < len(s) && s[n] == ' ' {
		n++
	}
	return s[:i], s[j:k], n
}

// ParseDuration parses a non-negative systemd/Go style time span.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.Trim(s, " ")
	if in == "" {
		return 0, fmt.Errorf("invalid duration %q: empty", s)
	}
	if bare(in) {
		n, _ := strconv.ParseFloat(in, 64)
		if n > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("invalid duration %q: out of range", s)
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	var total time.Duration
	for rest := in; rest != ""; {
		numS, unitS, n := part(rest)
		if n == 0 {
			if bare(rest) {
				return 0, fmt.Errorf("invalid duration %q: %q has no unit (in a span of several parts, write e.g. 1h 30min)", s, rest)
			}
			return 0, fmt.Errorf("invalid duration %q: expected NUMBER UNIT at %q (e.g. 90s, 5min, 1h 30min)", s, rest)
		}
		unit, ok := units[unitS]
		if !ok {
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q (us, ms, s, min, h, d, w)", s, unitS)
		}
		num, _ := strconv.ParseFloat(numS, 64)
		part := num * float64(unit)
		if part > float64(math.MaxInt64)-float64(total) {
			return 0, fmt.Errorf("invalid duration %q: out of range", s)
		}
		total += time.Duration(part)
		rest = rest[n:]
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
