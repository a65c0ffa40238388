// Package notify tells the outside world about a job's transitions: a
// healthchecks.io-compatible ping URL (start, success, fail with the exit
// code) and a JSON webhook. Targets (URLs can hold secrets) come from a file
// the deploy writes for the supervisor only, never from a command line, a
// unit or the environment; a URL is never printed, only its host.
//
// Sending is bounded (a timeout per try, a few tries) and only ever warns:
// a notification never fails a job.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
		if errors.Is(err, fsNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("notify dir: %w", err)
	}
	defer d.Close()
	data, info, err := d.ReadOwned(job+".json", 64<<10, owners, true)
	if errors.Is(err, fsNotExist) {
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

// Client sends with bounds: Timeout per try, Tries tries, Backoff between.
type Client struct {
	HTTP    *http.Client
	Tries   int
	Backoff time.Duration
}

// Default is 3 tries of at most 5 s, 1 s apart.
var Default = Client{HTTP: &http.Client{Timeout: 5 * time.Second}, Tries: 3, Backoff: time.Second}

// Start pings a healthchecks target's /start (every run: it measures the
// run's duration and is not a transition).
func (c Client) Start(ctx context.Context, t Target) error {
	if t.Kind != "healthchecks" || t.On != "every" {
		return nil
	}
	return c.send(ctx, http.MethodPost, strings.TrimRight(t.URL, "/")+"/start", "text/plain", nil)
}

// Send delivers e to t: healthchecks gets the base URL on success (and done)
// or /EXITCODE on a failure, with the output as body; a webhook gets e as
// JSON.
func (c Client) Send(ctx context.Context, t Target, e Event) error {
	switch t.Kind {
	case "healthchecks":
		u := strings.TrimRight(t.URL, "/")
		if e.Result != "success" && e.Result != "done" {
			code := e.ExitCode
			if code == 0 {
				code = 1
			}
			u += "/" + strconv.Itoa(code)
		}
		return c.send(ctx, http.MethodPost, u, "text/plain", []byte(strings.Join(e.Output, "\n")))
	default:
		body, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return c.send(ctx, http.MethodPost, t.URL, "application/json", body)
	}
}

func (c Client) send(ctx context.Context, method, u string, ctype string, body []byte) error {
	var last error
	for try := 1; try <= max(c.Tries, 1); try++ {
		if try > 1 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(c.Backoff):
			}
		}
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		if err != nil {
			return errors.New("bad request") // never echo the URL
		}
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("User-Agent", "tickgate")
		resp, err := c.HTTP.Do(req)
		if err != nil {
			last = scrub(err)
			continue
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode < 300 {
			return nil
		}
		last = fmt.Errorf("HTTP %d", resp.StatusCode)
		if resp.StatusCode < 500 && resp.StatusCode != 429 {
			break // the target refuses this request: another try will not help
		}
	}
	return last
}

// scrub drops the URL from a net/http error (it would print the secret).
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return errors.New("timed out")
		}
		return errors.New(ue.Err.Error())
	}
	return err
}

var fsNotExist = fs.ErrNotExist
