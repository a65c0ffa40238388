// Package calendar asks systemd when OnCalendar= expressions next elapse.
// systemd's calendar grammar (ranges, repetitions, weekdays, time zones,
// DST) is systemd's own; the helper never re-implements it, it asks
// `systemd-analyze calendar`, the same code the timer uses.
package calendar

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tickgate/tickgate/helper/sysprog"
)

// layout is how systemd-analyze prints a timestamp in UTC.
const layout = "Mon 2006-01-02 15:04:05 MST"

// ErrNever means no expression elapses again.
var ErrNever = errors.New("the schedule never elapses again")

// Next returns the earliest next elapse after now of any of specs, in UTC
// (without a timer's RandomizedDelaySec=, which is added per host). The
// expressions are read in this host's time zone unless they name one, like
// the timer reads them.
func Next(ctx context.Context, specs []string) (time.Time, error) {
	els, err := Elapses(ctx, specs, 1)
	if err != nil {
		return time.Time{}, err
	}
	return els[0], nil
}

// Elapses returns the next n elapses after now of all specs together,
// sorted, in UTC, without duplicates (each expression contributes its own
// next n; the earliest n of the union are returned).
func Elapses(ctx context.Context, specs []string, n int) ([]time.Time, error) {
	return elapses(ctx, specs, n, nil)
}

// ElapsesAfter is Elapses from base instead of now: the next n elapses
// strictly after base.
func ElapsesAfter(ctx context.Context, specs []string, base time.Time, n int) ([]time.Time, error) {
	return elapses(ctx, specs, n, &base)
}

func elapses(ctx context.Context, specs []string, n int, base *time.Time) ([]time.Time, error) {
	if len(specs) == 0 {
		return nil, errors.New("no schedule given")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	// The system's own systemd-analyze, never one found through PATH, with
	// a fixed environment: no TZ, so the host's zone, as the timer reads it.
	args := []string{"calendar", fmt.Sprintf("--iterations=%d", n)}
	if base != nil {
		// Whole seconds: systemd-analyze reads @SECONDS; a base inside a
		// second is taken at its start, so an elapse in that same second
		// counts as after it (callers ask from a window's length before now).
		args = append(args, fmt.Sprintf("--base-time=@%d", base.Unix()))
	}
	cmd, err := sysprog.Command(ctx, "systemd-analyze", append(append(args, "--"), specs...)...)
	if err != nil {
		return nil, fmt.Errorf("systemd-analyze calendar %q: %v", specs, err)
	}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("systemd-analyze calendar %q: %s", specs, msg)
	}
	all, err := parseAll(stdout.Bytes())
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, ErrNever
	}
	if len(all) > n {
		all = all[:n]
	}
	return all, nil
}

// parseAll reads every elapse (Next elapse and the iterations' lines, each
// replaced by its "(in UTC)" line when the zone is not UTC). systemd 252
// (Debian 12) names an iteration "Iter. #k", systemd 257 (Debian 13)
// "Iteration #k".
func parseAll(out []byte) ([]time.Time, error) {
	var vals []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		key, val, ok := strings.Cut(strings.TrimSpace(sc.Text()), ": ")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch {
		case key == "Next elapse" || strings.HasPrefix(key, "Iter. #") || strings.HasPrefix(key, "Iteration #"):
			if val != "never" {
				vals = append(vals, val)
			}
		case key == "(in UTC)" && len(vals) > 0:
			vals[len(vals)-1] = val
		}
	}
	seen := map[time.Time]bool{}
	var out2 []time.Time
	for _, v := range vals {
		t, err := time.Parse(layout, v)
		if err != nil || !strings.HasSuffix(v, " UTC") {
			return nil, fmt.Errorf("systemd-analyze calendar: unexpected time %q", v)
		}
		if t = t.UTC(); !seen[t] {
			seen[t] = true
			out2 = append(out2, t)
		}
	}
	sort.Slice(out2, func(a, b int) bool { return out2[a].Before(out2[b]) })
	return out2, nil
}
