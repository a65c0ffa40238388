// Package notify tells the outside world about a job's transitions: a
// healthchecks.io-compatible ping URL (start, success, fail with the exit
// code) and a JSON webhook. Targets (URLs can hold secrets) come from a file
// the deploy writes for the supervisor only, never from a command line, a
// unit or the environment; a URL is never printed, only its host.
//
// Sending (package notify/send) is bounded (a timeout per try, a few tries)
// and only ever warns: a notification never fails a job. This package holds
// the targets and the event and links no HTTP client, so a tick that has
// no targets does not pay for one.
package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"time"

	"github.com/tickgate/tickgate/helper/safefs"
)

// Target is one place to notify.
type Target struct {
	Kind string `json:"kind"` // "healthchecks" or "webhook"
	URL  string `json:"url"`
	On   string `json:"on"` // "transitions" (default) or "every"
}

// Config is the targets file: /etc/tickgate/notify/JOB.json.
type Config struct {
	Targets []Target `json:"targets"`
}

// Event is one tick's outcome as a webhook sees it.
type Event struct {
	Host            string    `json:"host"`
	Job             string    `json:"job"`
	Result          string    `json:"result"`
	Reason          string    `json:"reason"`
	ExitCode        int       `json:"exit_code"`
	RunID           string    `json:"run_id"`
	DurationSeconds float64   `json:"duration_seconds"`
	Transition      string    `json:"transition,omitempty"` // failing, halted, done, recovered ("" = none)
	Output          []string  `json:"output"`               // the last lines the job wrote, from the journal
	At              time.Time `json:"at"`
}

// Load reads the targets of job from dir (no file: no targets). The file
// must be tickgate's (root's or the supervisor's) and not readable by
// others: it may hold secrets.
func Load(dir, job string, owners *safefs.Owners) (*Config, error) {
	if dir == "" {
		return nil, nil
	}
	d, err := safefs.OpenRoot(dir, false, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("notify dir: %w", err)
	}
	defer d.Close()
	data, info, err := d.ReadOwned(job+".json", 64<<10, owners, true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("notify targets of job %s: %w", job, err)
	}
	if info.Mode&0o077 != 0 {
		return nil, fmt.Errorf("notify targets of job %s: mode %04o lets others read its URLs (want 0600)", job, info.Mode)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("notify targets of job %s do not parse: %v", job, err)
	}
	for i, t := range c.Targets {
		if err := t.check(); err != nil {
			return nil, fmt.Errorf("notify targets of job %s: target %d: %v", job, i+1, err)
		}
	}
	return &c, nil
}

func (t Target) check() error {
	switch t.Kind {
	case "healthchecks", "webhook":
	default:
		return fmt.Errorf("kind %q is neither healthchecks nor webhook", t.Kind)
	}
	switch t.On {
	case "", "transitions", "every":
	default:
		return fmt.Errorf("on %q is neither transitions nor every", t.On)
	}
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s URL is not an http(s) URL", t.Kind)
	}
	return nil
}

// Redact names a URL without its secrets: scheme and host only.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(an unparsable URL)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// Wants says whether t is told about an event (every tick that ran, or only
// transitions).
func (t Target) Wants(e Event) bool { return t.On == "every" || e.Transition != "" }
