// Package send delivers notifications (package notify) over HTTP: a
// healthchecks.io-compatible ping and a JSON webhook, bounded, never naming
// a URL in an error. Only the full helper links it (runner.Deps.Notify).
package send

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tickgate/tickgate/helper/notify"
)

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
func (c Client) Start(ctx context.Context, t notify.Target) error {
	if t.Kind != "healthchecks" || t.On != "every" {
		return nil
	}
	return c.send(ctx, http.MethodPost, strings.TrimRight(t.URL, "/")+"/start", "text/plain", nil)
}

// Send delivers e to t: healthchecks gets the base URL on success (and done)
// or /EXITCODE on a failure, with the output as body; a webhook gets e as
// JSON.
func (c Client) Send(ctx context.Context, t notify.Target, e notify.Event) error {
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
