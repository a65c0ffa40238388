package fleet

// These tests run against a real PostgreSQL that `make test` starts for them
// (scripts/pgtest): its DSNs come in TICKGATE_TEST_PG_*_DSN.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickgate/tickgate/helper/fleet/fleettest"
	"github.com/tickgate/tickgate/helper/gate"
)

type dsns struct{ admin, tick, super, ctl string }

func needPG(t *testing.T) dsns {
	t.Helper()
	d := fleettest.DB(t, "fleetpkg", func(dsn string) error {
		_, err := Migrate(context.Background(), Options{DSN: dsn}, "tickgate_tick")
		return err
	})
	return dsns{d.Admin, d.Tick, d.Super, d.Ctl}
}

func connect(t *testing.T, dsn, app string) *Client {
	t.Helper()
	c, err := Connect(context.Background(), Options{DSN: dsn, AppName: app})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func exec1(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	c, err := dial(context.Background(), Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	d := needPG(t)
	applied, err := Migrate(context.Background(), Options{DSN: d.admin}, "tickgate_tick")
	if err != nil || len(applied) != 0 {
		t.Fatalf("second migration applied %v, %v; want nothing", applied, err)
	}
	connect(t, d.tick, "test")
}

// A helper that meets a schema newer or older than it understands says so in
// one line; the deploy refuses to migrate a newer one down.
func TestSchemaVersionMismatch(t *testing.T) {
	d := needPG(t)
	defer exec1(t, d.super, "UPDATE tickgate.meta SET version = $1", SchemaVersion)
	for _, tc := range []struct {
		version int
		want    string
	}{
		{SchemaVersion + 1, "newer than this helper understands"},
		{SchemaVersion - 1, "older than this helper needs"},
	} {
		exec1(t, d.super, "UPDATE tickgate.meta SET version = $1", tc.version)
		_, err := Connect(context.Background(), Options{DSN: d.tick})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("schema %d: Connect = %v, want one line with %q", tc.version, err, tc.want)
		}
	}
	exec1(t, d.super, "UPDATE tickgate.meta SET version = $1", SchemaVersion+1)
	if _, err := Migrate(context.Background(), Options{DSN: d.admin}, "tickgate_tick"); err == nil || !strings.Contains(err.Error(), "newer than this helper") {
		t.Fatalf("Migrate over a newer schema = %v", err)
	}
}

// The tick role reads the fleet gate and cannot change it; the admin can.
func TestFleetGateRoles(t *testing.T) {
	d := needPG(t)
	tick, admin := connect(t, d.tick, "tick"), connect(t, d.admin, "admin")
	err := tick.UpdateGate(context.Background(), func(g *gate.Gate) error { g.Closed = true; return nil })
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("the tick role changed the gate: %v", err)
	}
	for _, closed := range []bool{true, false} {
		if err := admin.UpdateGate(context.Background(), func(g *gate.Gate) error {
			g.Closed, g.Reason = closed, "fleet test"
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		g, err := tick.Gate(context.Background())
		if err != nil || g.ClosedNow(time.Now()) != closed {
			t.Fatalf("tick sees %+v, %v; want closed=%v", g, err, closed)
		}
	}
	for _, sql := range []string{"DELETE FROM tickgate.locks", "UPDATE tickgate.gate SET doc = '{}'", "DROP TABLE tickgate.locks"} {
		if _, err := tick.conn.Exec(context.Background(), sql); err == nil {
			t.Fatalf("the tick role could: %s", sql)
		}
	}
}

// Two holders of one fleet lock group never overlap, however many race at
// the same instant, and the fencing token grows with every acquisition.
func TestFleetLockRaces(t *testing.T) {
	d := needPG(t)
	const helpers, rounds = 4, 240
	clients := make([]*Client, helpers)
	for i := range clients {
		clients[i] = connect(t, d.tick, fmt.Sprintf("race-%d", i))
	}
	var inside, overlaps, wins atomic.Int64
	var mu sync.Mutex
	var lastFence int64
	for round := 0; round < rounds; round++ {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Add(1)
			go func(i int, c *Client) {
				defer wg.Done()
				<-start
				h, err := c.TryLock(context.Background(), "race", Holder{Host: "h", Job: fmt.Sprint(i), PID: i})
				if errors.Is(err, ErrBusy) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				if inside.Add(1) != 1 {
					overlaps.Add(1)
				}
				mu.Lock()
				if h.Fence <= lastFence {
					t.Errorf("fence %d after %d: not growing", h.Fence, lastFence)
				}
				lastFence = h.Fence
				mu.Unlock()
				wins.Add(1)
				time.Sleep(2 * time.Millisecond)
				inside.Add(-1)
				if err := h.Release(context.Background()); err != nil {
					t.Error(err)
				}
			}(i, c)
		}
		close(start)
		wg.Wait()
	}
	t.Logf("%d races of %d helpers: %d acquisitions, %d overlaps", rounds, helpers, wins.Load(), overlaps.Load())
	if overlaps.Load() != 0 || wins.Load() < rounds {
		t.Fatalf("%d overlaps, %d acquisitions in %d rounds", overlaps.Load(), wins.Load(), rounds)
	}
	// The fencing token can never be lowered, not even by its own role.
	if _, err := clients[0].conn.Exec(context.Background(), "UPDATE tickgate.locks SET fence = 1 WHERE lock_group = 'race'"); err == nil ||
		!strings.Contains(err.Error(), "may only grow") {
		t.Fatalf("lowering a fence: %v", err)
	}
}

// A holder whose backend is terminated learns it within the watch interval,
// and another session can take the group (with a larger fence).
func TestLockLossTerminateBackend(t *testing.T) {
	d := needPG(t)
	a := connect(t, d.tick, "tickgate-loss-a")
	h, err := a.TryLock(context.Background(), "loss", Holder{Host: "a", Job: "j", PID: 1})
	if err != nil {
		t.Fatal(err)
	}
	lost, stop := h.Watch(100 * time.Millisecond)
	defer stop()
	start := time.Now()
	exec1(t, d.super, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tickgate-loss-a'")
	select {
	case err := <-lost:
		t.Logf("loss noticed after %s: %v", time.Since(start).Round(time.Millisecond), err)
		if !strings.Contains(err.Error(), "fleet lock group loss lost") {
			t.Fatalf("loss error %q does not name the group", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the loss was not noticed within 10 s")
	}
	b := connect(t, d.tick, "tickgate-loss-b")
	h2, err := b.TryLock(context.Background(), "loss", Holder{Host: "b", Job: "j", PID: 2})
	if err != nil || h2.Fence <= h.Fence {
		t.Fatalf("after the loss: %+v, %v", h2, err)
	}
}

// A slow server (a lock held on the gate's table) never hangs a call: it
// fails at the timeout, saying so.
func TestSlowServerIsBounded(t *testing.T) {
	d := needPG(t)
	blocker, err := dial(context.Background(), Options{DSN: d.super})
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	tx, err := blocker.conn.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(context.Background(), "LOCK TABLE tickgate.gate IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	c, err := Connect(context.Background(), Options{DSN: d.tick, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.Gate(context.Background())
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "timed out") || took > 3*time.Second {
		t.Fatalf("Gate on a slow server: %v after %s", err, took)
	}
	t.Logf("gave up after %s: %v", took.Round(time.Millisecond), err)
}

// An unreachable server fails at once (refused) or at the timeout, and the
// message never carries the password.
func TestUnreachable(t *testing.T) {
	start := time.Now()
	_, err := Connect(context.Background(), Options{DSN: "postgresql://tickgate_tick:s3cret@127.0.0.1:1/tickgate?sslmode=disable", Timeout: time.Second})
	if err == nil || strings.Contains(err.Error(), "s3cret") || time.Since(start) > 3*time.Second {
		t.Fatalf("Connect to a closed port: %v after %s", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1/tickgate as tickgate_tick") {
		t.Fatalf("the error does not say where: %v", err)
	}
}

// With one login role per host (members of the tick role), a host cannot
// change another host's job records.
func TestRecordsBelongToTheirRole(t *testing.T) {
	d := needPG(t)
	exec1(t, d.super, `DO $$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tickgate_tick_hostb') THEN
			CREATE ROLE tickgate_tick_hostb LOGIN PASSWORD 'pw-b' IN ROLE tickgate_tick;
		END IF; END $$`)
	exec1(t, d.super, "GRANT CONNECT ON DATABASE tickgate_fleetpkg TO tickgate_tick_hostb")
	a := connect(t, d.tick, "host-a")
	if err := a.Publish(context.Background(), "host-a", "j", map[string]string{"result": "success"}); err != nil {
		t.Fatal(err)
	}
	b := connect(t, "postgresql://tickgate_tick_hostb:pw-b@"+strings.SplitN(d.tick, "@", 2)[1], "host-b")
	if err := b.Publish(context.Background(), "host-a", "j", map[string]string{"result": "forged"}); err == nil {
		t.Fatal("host b overwrote host a's record")
	}
	if _, err := b.conn.Exec(context.Background(), "UPDATE tickgate.jobs SET record = '{}' WHERE host = 'host-a'"); err != nil {
		t.Fatal(err) // RLS: the row is simply not b's to update
	}
	recs, err := b.Records(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Host == "host-a" && !strings.Contains(string(r.Record), "success") {
			t.Fatalf("host a's record changed: %s", r.Record)
		}
	}
	if err := b.Publish(context.Background(), "host-b", "j", map[string]string{"result": "own"}); err != nil {
		t.Fatal(err)
	}
}
