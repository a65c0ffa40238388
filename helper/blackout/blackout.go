// Package blackout is recurring windows in which jobs do not start
// (tickgate_blackouts): "nothing of lock group billing starts Saturdays
// 02:00-04:00". A window is an OnCalendar= expression (when it opens, read
// by systemd-analyze as the timer reads schedules) and a duration.
//
// A tick receives the windows that apply to its job (--blackouts, written
// by the deploy); the host's whole list lives beside the gate file
// (blackouts.json, root's) for `gate show` and `status`.
package blackout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tickgate/tickgate/helper/calendar"
	"github.com/tickgate/tickgate/helper/reason"
	"github.com/tickgate/tickgate/helper/safefs"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/timespec"
)

// FileName is the host's list of windows, in the gate file's directory.
const FileName = "blackouts.json"

// MaxFileSize bounds the host's list.
const MaxFileSize = 1 << 20

// Window is one recurring blackout window. All, Locks and Jobs (the host
// list only) say which jobs it applies to.
type Window struct {
	Name     string        `json:"name"`
	Calendar string        `json:"calendar"`
	Duration time.Duration `json:"-"`
	All      bool          `json:"all,omitempty"`
	Locks    []string      `json:"locks,omitempty"`
	Jobs     []string      `json:"jobs,omitempty"`
}

type wire struct {
	Name     string   `json:"name"`
	Calendar string   `json:"calendar"`
	Duration string   `json:"duration"`
	All      bool     `json:"all,omitempty"`
	Locks    []string `json:"locks,omitempty"`
	Jobs     []string `json:"jobs,omitempty"`
}

// MarshalJSON writes the duration as the job contract's span ("2h").
func (w Window) MarshalJSON() ([]byte, error) {
	return json.Marshal(wire{Name: w.Name, Calendar: w.Calendar, Duration: spanText(w.Duration), All: w.All, Locks: w.Locks, Jobs: w.Jobs})
}

func spanText(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", int64(d/time.Second))
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

// Parse reads a JSON list of windows (--blackouts, or the host's file).
func Parse(text []byte) ([]Window, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(text, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON list: %v", err)
	}
	out := make([]Window, 0, len(raw))
	for i, item := range raw {
		var w wire
		dec := json.NewDecoder(strings.NewReader(string(item)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&w); err != nil {
			return nil, fmt.Errorf("window %d: %v", i+1, err)
		}
		if !validName(w.Name) {
			return nil, fmt.Errorf("window %d: name %q: lower-case letters, digits, - and _ (at most 64)", i+1, w.Name)
		}
		if strings.TrimSpace(w.Calendar) == "" || strings.ContainsAny(w.Calendar, "\n\x00") {
			return nil, fmt.Errorf("window %s: calendar: an OnCalendar expression", w.Name)
		}
		d, err := timespec.ParseDuration(w.Duration)
		if err != nil {
			return nil, fmt.Errorf("window %s: duration: %v", w.Name, err)
		}
		if d <= 0 {
			return nil, fmt.Errorf("window %s: duration must be more than 0", w.Name)
		}
		for _, l := range w.Locks {
			if err := state.ValidName("lock", l); err != nil {
				return nil, fmt.Errorf("window %s: locks: %v", w.Name, err)
			}
		}
		for _, j := range w.Jobs {
			if err := state.ValidName("job", j); err != nil {
				return nil, fmt.Errorf("window %s: jobs: %v", w.Name, err)
			}
		}
		out = append(out, Window{Name: w.Name, Calendar: w.Calendar, Duration: d, All: w.All, Locks: w.Locks, Jobs: w.Jobs})
	}
	return out, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Load reads the host's list beside the gate file gatePath: nil when there
// is none. The file must be root's (or the supervisor's) and not writable
// by anyone else.
func Load(gatePath string, owners *safefs.Owners) ([]Window, error) {
	dir, err := safefs.OpenRoot(filepath.Dir(gatePath), false, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	data, _, err := dir.ReadOwned(FileName, MaxFileSize, owners, true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ws, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(filepath.Dir(gatePath), FileName), err)
	}
	return ws, nil
}

// Applies says whether w (from the host's list) stops job of lock group lock.
func (w Window) Applies(job, lock string) bool {
	return w.All || slices.Contains(w.Jobs, job) || slices.Contains(w.Locks, lock)
}

// Covering are the windows of ws that apply to job of lock group lock.
func Covering(ws []Window, job, lock string) []Window {
	var out []Window
	for _, w := range ws {
		if w.Applies(job, lock) {
			out = append(out, w)
		}
	}
	return out
}

// Span is one opening of a window.
type Span struct {
	Start, End time.Time
}

// Current is the opening of w that is in force at now, or else the next
// one: In says which. It asks systemd-analyze (package calendar).
func Current(ctx context.Context, w Window, now time.Time) (s Span, in bool, err error) {
	// Openings strictly after now - duration, in order: the first whose end
	// is after now is the one in force, or the next.
	els, err := calendar.ElapsesAfter(ctx, []string{w.Calendar}, now.Add(-w.Duration), 3)
	if err != nil {
		return Span{}, false, err
	}
	for _, e := range els {
		end := e.Add(w.Duration)
		if end.After(now) {
			return Span{Start: e, End: end}, !e.After(now), nil
		}
	}
	return Span{}, false, calendar.ErrNever
}

// Stop is the reason a tick at now may not start because of windows, or
// "": inside a window ("blackout: db-maint until T"), or — with an expected
// runtime — a window opening before the run would end ("blackout:
// db-maint starts T, within the expected runtime 1h"). A window that
// cannot be evaluated is an error.
func Stop(ctx context.Context, windows []Window, now time.Time, expected time.Duration) (string, error) {
	for _, w := range windows {
		s, in, err := Current(ctx, w, now)
		if errors.Is(err, calendar.ErrNever) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("blackout window %s: %v", w.Name, err)
		}
		if in {
			return reason.F(reason.Blackout, "%s until %s", w.Name, s.End.UTC().Format(time.RFC3339)), nil
		}
		if expected > 0 && s.Start.Before(now.Add(expected)) {
			return reason.F(reason.Blackout, "%s starts %s, within the expected runtime %s", w.Name, s.Start.UTC().Format(time.RFC3339), expected), nil
		}
	}
	return "", nil
}
