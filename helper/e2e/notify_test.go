package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickgate/tickgate/helper/notify"
)

type hits struct {
	mu       sync.Mutex
	webhooks []notify.Event
	pings    []string
}

func (h *hits) server(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		switch {
		case strings.HasPrefix(r.URL.Path, "/hook/"):
			var e notify.Event
			if err := json.Unmarshal(body, &e); err != nil {
				t.Errorf("webhook body: %v: %s", err, body)
			}
			h.webhooks = append(h.webhooks, e)
		case strings.HasPrefix(r.URL.Path, "/ping/"):
			h.pings = append(h.pings, strings.TrimPrefix(r.URL.Path, "/ping/s3cr3t-uuid"))
		case r.URL.Path == "/broken":
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (e *env) writeTargets(t *testing.T, job string, mode os.FileMode, targets ...notify.Target) {
	t.Helper()
	dir := filepath.Join(e.dir, "notify")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(notify.Config{Targets: targets})
	p := filepath.Join(dir, job+".json")
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// A webhook hears only transitions (first failure, recovery); a
// healthchecks ping URL with on: every hears every run (start, then success
// or /EXITCODE). URLs never reach the output.
func TestNotifications(t *testing.T) {
	e := newEnv(t)
	e.extraEnv = append(e.extraEnv, "TICKGATE_NOTIFY_DIR="+e.dir+"/notify")
	h := &hits{}
	srv := h.server(t)
	e.writeTargets(t, "j", 0o600,
		notify.Target{Kind: "webhook", URL: srv.URL + "/hook/s3cr3t-token?key=s3cr3t"},
		notify.Target{Kind: "healthchecks", URL: srv.URL + "/ping/s3cr3t-uuid", On: "every"})
	codes := []int{0, 3, 3, 0}
	for _, c := range codes {
		r := e.mustCode(c, "run", "j", "--", "sh", "-c", "echo line one; echo line two >&2; exit "+itoa(c))
		if strings.Contains(r.stderr, "s3cr3t") || strings.Contains(r.stdout, "s3cr3t") {
			t.Fatalf("a URL's secret reached the output:\n%s", r.stderr)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.webhooks) != 2 || h.webhooks[0].Transition != "failing" || h.webhooks[0].ExitCode != 3 || h.webhooks[0].Result != "failed" ||
		h.webhooks[1].Transition != "recovered" || h.webhooks[1].Result != "success" || h.webhooks[0].Job != "j" || h.webhooks[0].RunID == "" {
		t.Fatalf("webhooks (want failing, recovered): %+v", h.webhooks)
	}
	if got := strings.Join(h.pings, " "); got != "/start  /start /3 /start /3 /start " {
		t.Fatalf("pings %q", got)
	}
}

// A target that fails or hangs never fails, and only boundedly delays, the
// tick; a targets file others can read is refused (it holds secrets).
func TestNotificationsNeverFailTheJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.extraEnv = append(e.extraEnv, "TICKGATE_NOTIFY_DIR="+e.dir+"/notify")
	h := &hits{}
	srv := h.server(t)
	l, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e.writeTargets(t, "j", 0o600,
		notify.Target{Kind: "webhook", URL: srv.URL + "/broken?token=s3cr3t", On: "every"},
		notify.Target{Kind: "webhook", URL: "http://" + l.Addr().String() + "/hang/s3cr3t", On: "every"})
	start := time.Now()
	r := e.mustCode(0, "run", "j", "--", "true")
	took := time.Since(start)
	if !strings.Contains(r.stderr, "notifying http://127.0.0.1:") || !strings.Contains(r.stderr, "HTTP 500") || strings.Contains(r.stderr, "s3cr3t") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
	if took > 25*time.Second {
		t.Fatalf("the tick took %s with a hanging target", took)
	}
	t.Logf("tick with a failing and a hanging target: %s", took.Round(time.Millisecond))

	e.writeTargets(t, "k", 0o644, notify.Target{Kind: "webhook", URL: srv.URL + "/hook/x", On: "every"})
	r = e.mustCode(0, "run", "k", "--", "true")
	if !strings.Contains(r.stderr, "notifications off for this tick") || !strings.Contains(r.stderr, "lets others read its URLs") {
		t.Fatalf("a world-readable targets file:\n%s", r.stderr)
	}
}
