package runner

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickgate/tickgate/helper/report"
)

// The record's context watches for a signal only once something waits on
// it: stopped first, it never ends and takes no signal; waited on, a signal
// ends it (and is reported), and stop ends the watch.
func TestUntilSignal(t *testing.T) {
	newRunner := func() (*runner, *bytes.Buffer) {
		var errb bytes.Buffer
		return &runner{c: Config{Job: "j"}, rep: report.New(&errb), sigCh: make(chan os.Signal, 4)}, &errb
	}

	r, _ := newRunner()
	ctx := r.untilSignal()
	r.stopWatch()
	r.sigCh <- syscall.SIGTERM
	if ctx.Done() != nil || ctx.Err() != nil {
		t.Fatalf("stopped before any wait: Done %v, Err %v", ctx.Done(), ctx.Err())
	}
	if len(r.sigCh) != 1 {
		t.Fatal("a context never waited on took the signal")
	}

	r, errb := newRunner()
	ctx = r.untilSignal()
	bounded, cancel := context.WithTimeout(ctx, time.Minute) // as the state lock's wait does
	defer cancel()
	r.sigCh <- syscall.SIGTERM
	select {
	case <-bounded.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a signal did not end the wait")
	}
	if !errors.Is(ctx.Err(), context.Canceled) || !strings.Contains(errb.String(), "terminated received while recording") {
		t.Fatalf("Err %v, reported %q", ctx.Err(), errb.String())
	}
	r.stopWatch()

	r, _ = newRunner()
	ctx = r.untilSignal()
	done := ctx.Done()
	r.stopWatch()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("stop did not end the watch")
	}
}
