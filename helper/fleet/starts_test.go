package fleet

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// A fleet start is taken by exactly one of the hosts that ask for it at
// once, reported once by that host only, and a second request while one
// waits is that one.
func TestFleetStartTakenOnce(t *testing.T) {
	d := needPG(t)
	ctx := context.Background()
	register(t, d, "floaty", 10*time.Second)
	c := connect(t, d.tick, "starts")
	if _, err := c.RequestStart(ctx, "host0", "nosuch", false); err == nil || !strings.Contains(err.Error(), "not a floating singleton") {
		t.Fatalf("an unregistered job: %v", err)
	}
	id, err := c.RequestStart(ctx, "host0", "floaty", true)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := c.RequestStart(ctx, "host1", "floaty", false); err != nil || again != id {
		t.Fatalf("a second request while one waits: %d, %v (want %d)", again, err, id)
	}
	// Eight hosts ask at once: one takes it.
	var mu sync.Mutex
	var takers []string
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		host := "host" + string(rune('0'+i))
		hc := connect(t, d.tick, "taker "+host)
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, force, ok, err := hc.TakeStart(ctx, host, "floaty")
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				if got != id || !force {
					t.Errorf("%s took #%d force %v, want #%d force true", host, got, force, id)
				}
				mu.Lock()
				takers = append(takers, host)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(takers) != 1 {
		t.Fatalf("taken by %v, want exactly one host", takers)
	}
	taker := takers[0]
	other := "host0"
	if taker == other {
		other = "host1"
	}
	s, err := c.StartOf(ctx, id)
	if err != nil || s.TakenBy != taker || s.FinishedAt != nil || s.Lapsed {
		t.Fatalf("StartOf after the take: %+v, %v", s, err)
	}
	exit := 3
	rep := Start{Invocation: "0123456789abcdef0123456789abcdef", Result: "failed", ExitCode: &exit, Reason: "exit code 3 is not an ok code", Duration: 1.5}
	if err := c.FinishStart(ctx, other, id, rep); err == nil {
		t.Fatal("a host that did not take the start reported it")
	}
	if err := c.FinishStart(ctx, taker, id, rep); err != nil {
		t.Fatal(err)
	}
	if err := c.FinishStart(ctx, taker, id, rep); err == nil {
		t.Fatal("a start was reported twice")
	}
	s, err = c.StartOf(ctx, id)
	if err != nil || s.Result != "failed" || s.ExitCode == nil || *s.ExitCode != 3 || s.Invocation != rep.Invocation || s.FinishedAt == nil {
		t.Fatalf("StartOf after the report: %+v, %v", s, err)
	}
	// Nothing waits any more.
	if _, _, ok, err := c.TakeStart(ctx, "host2", "floaty"); ok || err != nil {
		t.Fatalf("a taken start was taken again: %v %v", ok, err)
	}
	// A host's role cannot act for another host.
	own := connect(t, d.HostDSN(t, "solo"), "solo")
	if _, err := own.RequestStart(ctx, "host0", "floaty", false); err == nil || !strings.Contains(err.Error(), "may not act for host") {
		t.Fatalf("a role acting for another host: %v", err)
	}
	if _, err := own.RequestStart(ctx, "solo", "floaty", false); err != nil {
		t.Fatal(err)
	}
	// A request nobody takes lapses after StartLapse.
	exec1(t, d.admin, "UPDATE tickgate.starts SET requested_at = requested_at - interval '11 minutes' WHERE taken_by IS NULL")
	if _, _, ok, err := c.TakeStart(ctx, "host2", "floaty"); ok || err != nil {
		t.Fatalf("a lapsed start was taken: %v %v", ok, err)
	}
}
