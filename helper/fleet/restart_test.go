//go:build pgrestart

package fleet

// Built only with -tags pgrestart: make test runs it alone, after the other
// packages, because it restarts the one test server they share.

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A server restart (fast) loses no lease: the rows were committed
// (synchronous_commit on), the holder renews on a new connection, and no
// one else takes the group meanwhile. Its fences stay.
func TestLeaseSurvivesServerRestart(t *testing.T) {
	d := needPG(t)
	if d.ctl == "" {
		t.Fatal("no pg_ctl given: run it through scripts/pgtest run")
	}
	a := connect(t, d.tick, "tickgate-restart")
	l, err := a.TakeLease(context.Background(), "restart", Holder{Host: "a", Job: "j", PID: 1}, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Fields(d.ctl)
	if out, err := exec.Command(args[0], append(args[1:], "-m", "fast", "restart")...).CombinedOutput(); err != nil {
		t.Fatalf("restart: %v: %s", err, out)
	}
	b := connect(t, d.tick, "after-restart")
	if _, err := b.TakeLease(context.Background(), "restart", Holder{Host: "b", Job: "j", PID: 2}, 20*time.Second); !errors.Is(err, ErrBusy) {
		t.Fatalf("after the restart, the lease was free: %v", err)
	}
	if err := l.Renew(context.Background()); err != nil {
		t.Fatalf("renewing after the restart: %v", err)
	}
	if err := l.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l2, err := b.TakeLease(context.Background(), "restart", Holder{Host: "b", Job: "j", PID: 2}, 20*time.Second); err != nil || l2.Fence <= l.Fence {
		t.Fatalf("after the release: %+v, %v", l2, err)
	}
}
