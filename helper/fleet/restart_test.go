//go:build pgrestart

package fleet

// Built only with -tags pgrestart: make test runs it alone, after the other
// packages, because it restarts the one test server they share.

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A server restart loses every lock; holders notice, and a new session
// takes the group with a larger fence.
func TestLockLossServerRestart(t *testing.T) {
	d := needPG(t)
	if d.ctl == "" {
		t.Fatal("no pg_ctl given: run it through scripts/pgtest run")
	}
	a := connect(t, d.tick, "tickgate-restart")
	h, err := a.TryLock(context.Background(), "restart", Holder{Host: "a", Job: "j", PID: 1})
	if err != nil {
		t.Fatal(err)
	}
	lost, stop := h.Watch(100 * time.Millisecond)
	defer stop()
	args := strings.Fields(d.ctl)
	if out, err := exec.Command(args[0], append(args[1:], "-m", "fast", "restart")...).CombinedOutput(); err != nil {
		t.Fatalf("restart: %v: %s", err, out)
	}
	select {
	case err := <-lost:
		t.Logf("restart noticed: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the restart was not noticed within 10 s")
	}
	b := connect(t, d.tick, "after-restart")
	if h2, err := b.TryLock(context.Background(), "restart", Holder{Host: "b", Job: "j", PID: 2}); err != nil || h2.Fence <= h.Fence {
		t.Fatalf("after the restart: %+v, %v", h2, err)
	}
}
