package fleet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// simHost is one host of the simulated fleet: its clock is off by skew, its
// timer adds a random delay up to maxDelay (RandomizedDelaySec=).
type simHost struct {
	name string
	skew time.Duration
	c    *Client
}

// nextElapse is the schedule "every period" as systemd-analyze would answer
// on a host whose clock reads now.
func nextElapse(now time.Time, period time.Duration) time.Time {
	return now.Truncate(period).Add(period)
}

// TestFloatingSingletonSlots runs 200 slots of a floating singleton over four
// hosts whose clocks are off by up to ±4 s and whose timers each add up to
// 3 s of random delay, all claiming at once against the real server: every
// slot runs exactly once. Along the way one host is down for a stretch and
// comes back with a Persistent catch-up, one is drained for a stretch, a
// new host joins half-way, and one tick is so late (a long lock wait) that
// the next slot's winner claims first.
func TestFloatingSingletonSlots(t *testing.T) {
	d := needPG(t)
	const (
		period   = 10 * time.Second
		maxDelay = 3 * time.Second
		slots    = 200
		job      = "floaty"
	)
	rng := rand.New(rand.NewPCG(1, 2))
	mk := func(name string, skew time.Duration) *simHost {
		return &simHost{name: name, skew: skew, c: connect(t, d.tick, "sim "+name)}
	}
	hosts := []*simHost{mk("a", -4*time.Second), mk("b", 0), mk("c", 4*time.Second)}
	late := mk("d", 1500*time.Millisecond) // joins at slot 100
	// Past slots: a claim may not be further ahead of the database's clock
	// than one interval (the simulation runs ahead of it otherwise).
	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(period)
	register(t, d, job, period)
	won := map[time.Time][]string{} // slot -> winners
	var mu sync.Mutex
	claim := func(h *simHost, trueNow time.Time) error {
		key := nextElapse(trueNow.Add(h.skew), period)
		s, err := h.c.ClaimSlot(context.Background(), job, key, h.name, testSchedule)
		switch {
		case err == nil:
			if !s.Slot.Equal(key) || s.Host != h.name {
				return fmt.Errorf("host %s won %s but the row says %s on %s", h.name, key, s.Slot, s.Host)
			}
			mu.Lock()
			won[key] = append(won[key], h.name)
			mu.Unlock()
		case errors.Is(err, ErrSlotTaken):
			if s.Slot.Before(key) {
				return fmt.Errorf("host %s lost slot %s to an earlier one %s", h.name, key, s.Slot)
			}
		default:
			return err
		}
		return nil
	}
	var pendingLate time.Time // a tick of host b stuck in a lock wait
	for k := 1; k <= slots; k++ {
		slot := base.Add(time.Duration(k) * period) // scheduled time of slot k
		var fire []*simHost
		for _, h := range hosts {
			switch {
			case h.name == "a" && k >= 40 && k < 60: // down: no tick at all
			case h.name == "c" && k >= 120 && k < 130: // drained: skipped before claiming
			default:
				fire = append(fire, h)
			}
		}
		if k >= 100 {
			fire = append(fire, late)
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(fire)+1)
		for _, h := range fire {
			// Each host fires when its own clock reads slot + its delay.
			trueNow := slot.Add(-h.skew).Add(time.Duration(rng.Int64N(int64(maxDelay))))
			wg.Add(1)
			go func() { defer wg.Done(); errs <- claim(h, trueNow) }()
		}
		if k == 60 {
			// Host a is back: Persistent= fires at once for the slots it
			// missed, in the middle of slot 60's window.
			wg.Add(1)
			go func() { defer wg.Done(); errs <- claim(hosts[0], slot.Add(5*time.Second)) }()
		}
		if k == 150 {
			// Host b's tick of slot 150 starts, then waits on a lock group.
			pendingLate = slot.Add(-hosts[1].skew).Add(time.Second)
		}
		wg.Wait()
		if k == 151 {
			// ... and claims only after slot 151 was won: its slot (150) is
			// over, so it must not run.
			s, err := hosts[1].c.ClaimSlot(context.Background(), job, nextElapse(pendingLate.Add(hosts[1].skew), period), "b", testSchedule)
			if !errors.Is(err, ErrSlotTaken) || !s.Slot.After(nextElapse(pendingLate, period)) {
				t.Fatalf("a late tick of slot 150 claimed after slot 151: %v (row %+v)", err, s)
			}
		}
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	// Slot k is named by its end, base+(k+1)*period.
	var bad []string
	for k := 1; k <= slots; k++ {
		key := base.Add(time.Duration(k+1) * period)
		if w := won[key]; len(w) != 1 {
			bad = append(bad, fmt.Sprintf("slot %d: %v", k, w))
		}
	}
	if len(won) != slots || len(bad) > 0 {
		t.Fatalf("%d slots claimed, want %d; not exactly once: %s", len(won), slots, strings.Join(bad, "; "))
	}
	per := map[string]int{}
	for _, w := range won {
		per[w[0]]++
	}
	t.Logf("slots won per host: %v", per)
	if per["d"] == 0 {
		t.Errorf("the host that joined won no slot: %v", per)
	}
}

// TestSlotClaimRace: hosts claiming one slot at the same instant, 200 times
// over: one winner each time, and everyone agrees who.
func TestSlotClaimRace(t *testing.T) {
	d := needPG(t)
	var cs []*Client
	for i := range 4 {
		cs = append(cs, connect(t, d.tick, fmt.Sprintf("race %d", i)))
	}
	base := time.Now().UTC().Add(-4 * time.Hour).Truncate(time.Minute)
	register(t, d, "race", time.Minute)
	for k := range 200 {
		key := base.Add(time.Duration(k) * time.Minute)
		wins := make(chan string, len(cs))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				host := fmt.Sprintf("host%d", i)
				s, err := c.ClaimSlot(context.Background(), "race", key, host, testSchedule)
				switch {
				case err == nil:
					wins <- host
				case errors.Is(err, ErrSlotTaken) && s.Slot.Equal(key) && s.Host != host:
				default:
					t.Errorf("slot %d: host %s: %v (row %+v)", k, host, err, s)
				}
			}()
		}
		close(start)
		wg.Wait()
		close(wins)
		if n := len(wins); n != 1 {
			t.Fatalf("slot %d: %d winners", k, n)
		}
	}
}

// The tick role can move a slot forward only; the admin role neither.
func TestSlotOnlyMovesForward(t *testing.T) {
	d := needPG(t)
	c := connect(t, d.tick, "fwd")
	t1 := time.Now().UTC().Truncate(time.Minute)
	register(t, d, "fwd", time.Hour)
	if _, err := c.ClaimSlot(context.Background(), "fwd", t1, "h", testSchedule); err != nil {
		t.Fatal(err)
	}
	if s, err := c.ClaimSlot(context.Background(), "fwd", t1.Add(-time.Hour), "test", testSchedule); !errors.Is(err, ErrSlotTaken) || !s.Slot.Equal(t1) {
		t.Fatalf("an earlier slot: %v, %+v", err, s)
	}
	for dsn, want := range map[string]string{d.tick: "permission denied", d.admin: "may only move forward"} {
		x, err := dial(context.Background(), Options{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		_, err = x.conn.Exec(context.Background(), "UPDATE tickgate.slots SET slot = slot - interval '1 day' WHERE job = 'fwd'")
		x.Close()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("moving a slot back: %v, want %q", err, want)
		}
	}
	x, err := dial(context.Background(), Options{DSN: d.tick})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	for _, sql := range []string{"DELETE FROM tickgate.slots", "UPDATE tickgate.slots SET slot = '9999-01-01' WHERE job = 'fwd'"} {
		if _, err := x.conn.Exec(context.Background(), sql); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("the tick role: %s: %v", sql, err)
		}
	}
	// Far ahead of the database's clock (a host a day ahead), or by another
	// schedule than the one registered: refused, the slot as it was.
	if _, err := c.ClaimSlot(context.Background(), "fwd", time.Now().Add(25*time.Hour), "h", testSchedule); err == nil ||
		!strings.Contains(err.Error(), "further ahead of the fleet database's clock") {
		t.Fatalf("a slot a day ahead: %v", err)
	}
	if _, err := c.ClaimSlot(context.Background(), "fwd", t1.Add(time.Hour), "h", ScheduleHash([]string{"*-*-* 03:00"})); !errors.Is(err, ErrSlotSchedule) {
		t.Fatalf("another schedule: %v", err)
	}
	if _, err := c.ClaimSlot(context.Background(), "unregistered", t1, "h", testSchedule); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("an unregistered job: %v", err)
	}
	all, err := c.Slots(context.Background())
	if err != nil || len(all) == 0 {
		t.Fatalf("Slots: %v %v", all, err)
	}
}

// testSchedule is the schedule the simulated singletons are registered with.
var testSchedule = ScheduleHash([]string{"*:*:0/10"})

// register registers job as a floating singleton of testSchedule (what the
// deploy does with the admin role).
func register(t *testing.T, d dsns, job string, interval time.Duration) {
	t.Helper()
	exec1(t, d.admin, `INSERT INTO tickgate.singletons (job, schedule, interval_seconds) VALUES ($1, $2, $3)
		ON CONFLICT (job) DO UPDATE SET schedule = EXCLUDED.schedule, interval_seconds = EXCLUDED.interval_seconds`, job, testSchedule, interval.Seconds())
}
