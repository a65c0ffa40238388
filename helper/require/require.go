// Package require is a job's preconditions (requires: in its job
// definition, --requires on the tick's command line): what must hold right
// before the job starts, else the tick skips with a reason.
//
//   - {command: [argv], timeout: 10s}: a check command, run by the tick as
//     the job's user in the job's unit (the runner runs it); it must exit 0
//     within the timeout, else the tick skips "precondition-failed: ARGV0
//     exited N: FIRST LINE OF ITS STDERR".
//   - {job: NAME, succeeded_within: 6h, scope: host|fleet}: NAME's last
//     success (this host's state of it, or the fleet's records of it on
//     every host) must be at most that old, else the tick skips
//     "dependency-stale: NAME last succeeded 7h ago (needs 6h)".
package require

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/tickgate/tickgate/helper/reason"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/timespec"
)

// DefaultTimeout bounds a check command that names no timeout.
const DefaultTimeout = 10 * time.Second

// MaxTimeout is the longest a check command may be given: a precondition
// is a quick question, not a job.
const MaxTimeout = 10 * time.Minute

// Scopes of a dependency.
const (
	Host  = "host"
	Fleet = "fleet"
)

// Requirement is one precondition: a check command (Command set) or a
// dependency on another job's recent success (Job set).
type Requirement struct {
	Command []string      `json:"command,omitempty"`
	Timeout time.Duration `json:"-"`
	Job     string        `json:"job,omitempty"`
	Within  time.Duration `json:"-"`
	Scope   string        `json:"scope,omitempty"`
}

type wire struct {
	Command []string `json:"command"`
	Timeout *string  `json:"timeout"`
	Job     *string  `json:"job"`
	Within  *string  `json:"succeeded_within"`
	Scope   *string  `json:"scope"`
}

// Parse reads --requires: a JSON list of requirements as the deploy
// writes them (durations as strings of the job contract's grammar).
func Parse(text string) ([]Requirement, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(text), &raw); err != nil {
		return nil, fmt.Errorf("--requires: not a JSON list: %v", err)
	}
	out := make([]Requirement, 0, len(raw))
	for i, item := range raw {
		r, err := parseOne(item)
		if err != nil {
			return nil, fmt.Errorf("--requires: item %d: %v", i+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func parseOne(item json.RawMessage) (Requirement, error) {
	var w wire
	dec := json.NewDecoder(strings.NewReader(string(item)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Requirement{}, err
	}
	var r Requirement
	switch {
	case w.Command != nil && w.Job != nil:
		return r, fmt.Errorf("give command or job, not both")
	case w.Command != nil:
		if w.Within != nil || w.Scope != nil {
			return r, fmt.Errorf("succeeded_within and scope belong to a job requirement")
		}
		if len(w.Command) == 0 || w.Command[0] == "" {
			return r, fmt.Errorf("command: a non-empty argv")
		}
		if !filepath.IsAbs(w.Command[0]) {
			return r, fmt.Errorf("command: %q is not an absolute path (a check runs no shell and no PATH lookup)", w.Command[0])
		}
		for _, a := range w.Command {
			if strings.IndexByte(a, 0) >= 0 {
				return r, fmt.Errorf("command: an argument holds a NUL byte")
			}
		}
		r.Command, r.Timeout = w.Command, DefaultTimeout
		if w.Timeout != nil {
			d, err := timespec.ParseDuration(*w.Timeout)
			if err != nil {
				return r, fmt.Errorf("timeout: %v", err)
			}
			if d <= 0 || d > MaxTimeout {
				return r, fmt.Errorf("timeout: %s is not within (0, %s]", d, MaxTimeout)
			}
			r.Timeout = d
		}
	case w.Job != nil:
		if w.Timeout != nil {
			return r, fmt.Errorf("timeout belongs to a command requirement")
		}
		if err := state.ValidName("job", *w.Job); err != nil {
			return r, err
		}
		if w.Within == nil {
			return r, fmt.Errorf("job %s: succeeded_within is required", *w.Job)
		}
		d, err := timespec.ParseDuration(*w.Within)
		if err != nil {
			return r, fmt.Errorf("job %s: succeeded_within: %v", *w.Job, err)
		}
		if d <= 0 {
			return r, fmt.Errorf("job %s: succeeded_within must be more than 0", *w.Job)
		}
		r.Job, r.Within, r.Scope = *w.Job, d, Host
		if w.Scope != nil {
			if *w.Scope != Host && *w.Scope != Fleet {
				return r, fmt.Errorf("job %s: scope: %q is neither host nor fleet", *w.Job, *w.Scope)
			}
			r.Scope = *w.Scope
		}
	default:
		return r, fmt.Errorf("give command or job")
	}
	return r, nil
}

// Stale is the skip reason for a dependency whose last success (nil:
// none known) is older than it allows at now, or "" if it is fresh.
func Stale(r Requirement, last *time.Time, now time.Time) string {
	if last == nil {
		return reason.F(reason.DependencyStale, "%s never succeeded%s (needs %s)", r.Job, where(r), span(r.Within))
	}
	age := now.Sub(*last)
	if age <= r.Within {
		return ""
	}
	return reason.F(reason.DependencyStale, "%s last succeeded %s ago%s (needs %s)", r.Job, span(age), where(r), span(r.Within))
}

func where(r Requirement) string {
	if r.Scope == Fleet {
		return " on any host"
	}
	return ""
}

// span prints a duration the way people say it: 7h, 6h30m, 45s.
func span(d time.Duration) string {
	switch {
	case d >= time.Hour:
		d = d.Round(time.Minute)
	case d >= time.Second:
		d = d.Round(time.Second)
	default:
		d = d.Round(time.Millisecond)
	}
	s := d.String()
	s = strings.Replace(s, "m0s", "m", 1)
	s = strings.Replace(s, "h0m", "h", 1)
	return s
}

// Unknown is the skip reason for a dependency whose last success could not
// be read (err): a job does not start on a guess.
func Unknown(r Requirement, err error) string {
	return reason.F(reason.DependencyStale, "%s: last success not known: %v", r.Job, err)
}

// Failed is the skip reason for a check command that exited with code (or
// -1 when it timed out after timeout), with the first line of its stderr.
func Failed(r Requirement, code int, stderrLine string) string {
	name := r.Command[0]
	var why string
	if code < 0 {
		why = fmt.Sprintf("%s timed out after %s", name, span(r.Timeout))
	} else {
		why = fmt.Sprintf("%s exited %d", name, code)
	}
	if stderrLine != "" {
		why += ": " + stderrLine
	}
	return reason.F(reason.PreconditionFailed, "%s", why)
}
