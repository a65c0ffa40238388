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
	"os/exec"
	"sort"
	"strings"
	"time"
)

// Analyze is the systemd-analyze binary (a variable for tests).
var Analyze = "systemd-analyze"

// layout is how systemd-analyze prints a timestamp in UTC.
const layout = "Mon 2006-01-02 15:04:05 MST"

// ErrNever means no expression elapses again.
var ErrNever = errors.New("the schedule never elapses again")

// Next returns the earliest next elapse after now of any of specs, in UTC
// (without a timer's RandomizedDelaySec=, which is added per host). The
// expressions are read in this host's time zone unless they name one, like
// the timer reads them.
func Next(ctx context.Context, specs []string) (time.Time, error) {
	if len(specs) == 0 {
		return time.Time{}, errors.New("no schedule given")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, Analyze, append([]string{"calendar", "--iterations=1", "--"}, specs...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return time.Time{}, fmt.Errorf("systemd-analyze calendar %q: %s", specs, msg)
	}
	return parse(stdout.Bytes())
}

// Elapses returns the next n elapses after now of all specs together,
// sorted, in UTC, without duplicates (each expression contributes its own
// next n; the earliest n of the union are returned).
func Elapses(ctx context.Context, specs []string, n int) ([]time.Time, error) {
	if len(specs) == 0 {
		return nil, errors.New("no schedule given")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, Analyze, append([]string{"calendar", fmt.Sprintf("--iterations=%d", n), "--"}, specs...)...)
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

// parseAll reads every elapse (Next elapse and Iter. #k lines, each replaced
// by its "(in UTC)" line when the zone is not UTC).
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
		case key == "Next elapse" || strings.HasPrefix(key, "Iter. #"):
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

// parse reads the earliest elapse of systemd-analyze calendar's output: each
// expression's "Next elapse:" line, or the "(in UTC):" line after it when
// the host's zone is not UTC.
func parse(out []byte) (time.Time, error) {
	var best time.Time
	found, never := 0, 0
	pending := "" // a Next elapse not in UTC, waiting for its "(in UTC)" line
	take := func(v string) error {
		t, err := time.Parse(layout, v)
		if err != nil || !strings.HasSuffix(v, " UTC") {
			return fmt.Errorf("systemd-analyze calendar: unexpected time %q", v)
		}
		if found == 0 || t.Before(best) {
			best = t
		}
		found++
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		key, val, ok := strings.Cut(strings.TrimSpace(sc.Text()), ": ")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "Next elapse":
			if pending != "" {
				return time.Time{}, fmt.Errorf("systemd-analyze calendar: %q has no UTC time", pending)
			}
			switch {
			case val == "never":
				never++
			case strings.HasSuffix(val, " UTC"):
				if err := take(val); err != nil {
					return time.Time{}, err
				}
			default:
				pending = val
			}
		case "(in UTC)":
			if pending == "" {
				continue
			}
			pending = ""
			if err := take(val); err != nil {
				return time.Time{}, err
			}
		}
	}
	if pending != "" {
		return time.Time{}, fmt.Errorf("systemd-analyze calendar: %q has no UTC time", pending)
	}
	if found == 0 {
		if never > 0 {
			return time.Time{}, ErrNever
		}
		return time.Time{}, errors.New("systemd-analyze calendar printed no next elapse")
	}
	return best.UTC(), nil
}
