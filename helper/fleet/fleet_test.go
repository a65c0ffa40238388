package fleet

// These tests run against a real PostgreSQL that `make test` starts for them
// (scripts/pgtest): its DSNs come in TICKGATE_TEST_PG_*_DSN.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/fleet/fleettest"
	"github.com/tickgate/tickgate/helper/gate"
)

type dsns struct {
	admin, tick, super, ctl string
	all                     fleettest.DSNs
}

// HostDSN is a login role of host's own, mapped to it.
func (d dsns) HostDSN(t *testing.T, host string) string { return d.all.HostDSN(t, host) }

func needPG(t *testing.T) dsns {
	t.Helper()
	d := fleettest.DB(t, "fleetpkg", func(dsn string) error {
		_, err := Migrate(context.Background(), Options{DSN: dsn}, "tickgate_tick", Registration{})
		return err
	})
	return dsns{d.Admin, d.Tick, d.Super, d.Ctl, d}
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
	applied, err := Migrate(context.Background(), Options{DSN: d.admin}, "tickgate_tick", Registration{})
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
	if _, err := Migrate(context.Background(), Options{DSN: d.admin}, "tickgate_tick", Registration{}); err == nil || !strings.Contains(err.Error(), "newer than this helper") {
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
				l, err := c.TakeLease(context.Background(), "race", Holder{Host: "h", Job: fmt.Sprint(i), PID: i}, 10*time.Second)
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
				if l.Fence <= lastFence {
					t.Errorf("fence %d after %d: not growing", l.Fence, lastFence)
				}
				lastFence = l.Fence
				mu.Unlock()
				wins.Add(1)
				time.Sleep(2 * time.Millisecond)
				inside.Add(-1)
				if err := l.Release(context.Background()); err != nil {
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
	// The fence carries the server's timeline in its high bits.
	if lastFence>>32 < 1 {
		t.Fatalf("fence %d has no epoch", lastFence)
	}
	// The fencing token can never be lowered, not even by the admin role.
	a := connect(t, d.admin, "admin")
	if _, err := a.conn.Exec(context.Background(), "UPDATE tickgate.locks SET fence = 1 WHERE lock_group = 'race'"); err == nil ||
		!strings.Contains(err.Error(), "may only grow") {
		t.Fatalf("lowering a fence: %v", err)
	}
}

// A lease is the database's: it holds until its end by the database's
// clock whatever happens to the holder's session — a terminated backend,
// a dropped connection — and its holder renews it on a new connection;
// another host takes it only once it has ended, with a larger fence.
// A take whose answer was lost (its connection broke after the commit) is
// asked again with the same token, as the client's one retry does: it is
// the holder's still, with the same fence; another token is refused.
func TestTakeAskedAgainKeepsItsFence(t *testing.T) {
	d := needPG(t)
	c := connect(t, d.tick, "again")
	ctx := context.Background()
	take := func(token string) (bool, int64) {
		t.Helper()
		var taken bool
		var fence int64
		if err := c.conn.QueryRow(ctx, "SELECT taken, fence FROM tickgate.take_lease('again', 'host0', 'j', 1, $1, 30000)", token).Scan(&taken, &fence); err != nil {
			t.Fatal(err)
		}
		return taken, fence
	}
	tok := NewToken()
	ok1, f1 := take(tok)
	ok2, f2 := take(tok)
	if !ok1 || !ok2 || f1 != f2 {
		t.Fatalf("the same take twice: %v %d, then %v %d", ok1, f1, ok2, f2)
	}
	if ok3, _ := take(NewToken()); ok3 {
		t.Fatal("another token took a held lease")
	}
}

func TestLeaseOutlivesItsSession(t *testing.T) {
	d := needPG(t)
	a := connect(t, d.tick, "tickgate-lease-a")
	l, err := a.TakeLease(context.Background(), "lease", Holder{Host: "a", Job: "j", PID: 1}, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	exec1(t, d.super, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tickgate-lease-a'")
	b := connect(t, d.tick, "tickgate-lease-b")
	if _, err := b.TakeLease(context.Background(), "lease", Holder{Host: "b", Job: "j", PID: 2}, 3*time.Second); !errors.Is(err, ErrBusy) ||
		!strings.Contains(err.Error(), "held by job j on host a") {
		t.Fatalf("while a's lease lasts, without its session: %v", err)
	}
	if err := l.Renew(context.Background()); err != nil {
		t.Fatalf("renewing on a new connection: %v", err)
	}
	// a stops renewing: b gets it once the end has passed, not before.
	until := l.Until()
	var l2 *Lease
	for {
		l2, err = b.TakeLease(context.Background(), "lease", Holder{Host: "b", Job: "j", PID: 2}, 3*time.Second)
		if err == nil || !errors.Is(err, ErrBusy) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || l2.Fence <= l.Fence {
		t.Fatalf("after the end: %+v, %v", l2, err)
	}
	var dbNow time.Time
	if err := b.conn.QueryRow(context.Background(), "SELECT clock_timestamp()").Scan(&dbNow); err != nil || dbNow.Before(until) {
		t.Fatalf("b took the lease at %s, before its end %s", dbNow, until)
	}
	// a's renewal now says lost; its release does nothing to b's.
	if err := l.Renew(context.Background()); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("a's renewal after b took it: %v", err)
	}
	_ = l.Release(context.Background())
	if _, err := a.TakeLease(context.Background(), "lease", Holder{Host: "a", Job: "j", PID: 1}, 3*time.Second); !errors.Is(err, ErrBusy) {
		t.Fatalf("a's release freed b's lease: %v", err)
	}
}

// Keep renews a lease while it is kept, and when renewals fail says so:
// "soft" at half the lease, "hard" at three quarters, always before the
// lease's end by the database's clock.
func TestKeepDeadlines(t *testing.T) {
	d := needPG(t)
	c := connect(t, d.tick, "tickgate-keep")
	l, err := c.TakeLease(context.Background(), "keep", Holder{Host: "a", Job: "j", PID: 1}, 6*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fed := atomic.Int64{}
	events, stop := l.Keep(func() { fed.Add(1) })
	defer stop()
	select {
	case e := <-events:
		t.Fatalf("an event while renewals work: %+v", e)
	case <-time.After(3 * time.Second):
	}
	if fed.Load() < 2 {
		t.Fatalf("the watchdog was fed %d times in 3 s", fed.Load())
	}
	// Renewals fail from now: the client's connection is closed for good.
	first := l.LastOK()
	c.Close()
	var soft, hard time.Time
	for hard.IsZero() {
		select {
		case e := <-events:
			switch e.Kind {
			case "soft":
				soft = time.Now()
			case "hard":
				hard = time.Now()
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no hard event within 10 s")
		}
	}
	last := l.LastOK()
	t.Logf("last renewal %s after the take; soft %s, hard %s after it (lease 6s)", last.Sub(first).Round(time.Millisecond),
		soft.Sub(last).Round(time.Millisecond), hard.Sub(last).Round(time.Millisecond))
	if soft.IsZero() || soft.Sub(last) < 3*time.Second || hard.Sub(last) < 4500*time.Millisecond || hard.Sub(last) > 5500*time.Millisecond {
		t.Fatalf("soft %v, hard %v after the last renewal (want 3s and 4.5s of a 6s lease)", soft.Sub(last), hard.Sub(last))
	}
	n := fed.Load()
	time.Sleep(1500 * time.Millisecond)
	if fed.Load() != n {
		t.Fatal("the watchdog was fed after the hard deadline")
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
	// The server's statement_timeout (a startup parameter) or the client's
	// own bound, whichever comes first.
	if err == nil || !(strings.Contains(err.Error(), "timed out") || strings.Contains(err.Error(), "statement timeout")) || took > 3*time.Second {
		t.Fatalf("Gate on a slow server: %v after %s", err, took)
	}
	t.Logf("gave up after %s: %v", took.Round(time.Millisecond), err)
}

// An unreachable server fails at once (refused) or at the timeout, and the
// message never carries the password.
func TestUnreachable(t *testing.T) {
	start := time.Now()
	_, err := Connect(context.Background(), Options{DSN: "postgresql://tickgate_tick:s3cret@127.0.0.1:1/tickgate?sslmode=disable", Timeout: time.Second, Insecure: true})
	if err == nil || strings.Contains(err.Error(), "s3cret") || time.Since(start) > 3*time.Second {
		t.Fatalf("Connect to a closed port: %v after %s", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1/tickgate as tickgate_tick") {
		t.Fatalf("the error does not say where: %v", err)
	}
}

// A host's tick role can touch only its own rows: records, leases, slots
// and back-offs of another host are refused, as are a fence set by hand, a
// slot far ahead, a back-off beyond 7 days, with control characters, or of
// a group it does not hold.
func TestHostRoleCannotForge(t *testing.T) {
	d := needPG(t)
	ctx := context.Background()
	a := connect(t, d.HostDSN(t, "host-a"), "host-a")
	b := connect(t, d.HostDSN(t, "host-b"), "host-b")
	if err := a.Publish(ctx, "host-a", "j", map[string]string{"result": "success"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "host-a", "j", map[string]string{"result": "forged"}); err == nil {
		t.Fatal("host b wrote host a's record")
	}
	if _, err := b.conn.Exec(ctx, "UPDATE tickgate.jobs SET record = '{}' WHERE host = 'host-a'"); err != nil {
		t.Fatal(err) // RLS: the row is simply not b's to update
	}
	recs, err := b.Records(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Host == "host-a" && !strings.Contains(string(r.Record), "success") {
			t.Fatalf("host a's record changed: %s", r.Record)
		}
	}
	if err := b.Publish(ctx, "host-b", "j", map[string]string{"result": "own"}); err != nil {
		t.Fatal(err)
	}
	// A lease for another host, a fence by hand, a lease deleted.
	if _, err := b.TakeLease(ctx, "forge", Holder{Host: "host-a", Job: "j", PID: 1}, 5*time.Second); err == nil ||
		!strings.Contains(err.Error(), "may not act for host host-a") {
		t.Fatalf("b took a lease as host a: %v", err)
	}
	l, err := a.TakeLease(ctx, "forge", Holder{Host: "host-a", Job: "j", PID: 1}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		"UPDATE tickgate.locks SET fence = 9223372036854775807 WHERE lock_group = 'forge'",
		"UPDATE tickgate.locks SET lease_until = NULL WHERE lock_group = 'forge'",
		"INSERT INTO tickgate.locks (lock_group, fence) VALUES ('forge2', 9223372036854775807)",
		"DELETE FROM tickgate.locks",
		"INSERT INTO tickgate.slots (job, slot, host) VALUES ('s', '9999-01-01', 'host-b')",
		"INSERT INTO tickgate.backoffs (lock_group, until, reason, set_by) VALUES ('forge', '9999-01-01', 'x', 'y')",
		"INSERT INTO tickgate.hosts (role, host) VALUES ('tickgate_tick_host_b', 'host-a')",
		"INSERT INTO tickgate.singletons (job, schedule, interval_seconds) VALUES ('s', 'x', 1)",
	} {
		if _, err := b.conn.Exec(ctx, sql); err == nil {
			t.Errorf("host b's role could: %s", sql)
		}
	}
	if err := (&Lease{c: b, Group: "forge", Host: "host-b", Token: l.Token, Fence: l.Fence, TTL: 5 * time.Second}).Renew(ctx); err == nil {
		t.Fatal("b renewed a's lease with its token")
	}
	// Back-offs through the function: bounded by the database's clock, a
	// printable reason, this host only.
	for _, c := range []struct {
		until  time.Time
		reason string
		host   string
		want   string
	}{
		{time.Now().Add(8 * 24 * time.Hour), "429", "host-b", "at most 7 days ahead"},
		{time.Now().Add(time.Hour), "evil \x1b[2J", "host-b", "printable text"},
		{time.Now().Add(time.Hour), "evil \u202e", "host-b", "printable text"},
		{time.Now().Add(time.Hour), "429", "host-a", "may not act for host host-a"},
	} {
		_, err := b.JobBackoff(ctx, backoffB("forge", c.until, c.reason), c.host, "j", "0123456789abcdef")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("back-off %q until %s as %s: %v, want %q", c.reason, c.until, c.host, err, c.want)
		}
	}
	// Only the group's holder backs it off: a holds "forge", b does not.
	if _, err := b.JobBackoff(ctx, backoffB("forge", time.Now().Add(time.Hour), "429"), "host-b", "j", "0123456789abcdef"); err == nil ||
		!strings.Contains(err.Error(), "does not hold fleet lock group forge") {
		t.Fatalf("b backed off a's group: %v", err)
	}
	if _, err := b.TakeLease(ctx, "forge-b", Holder{Host: "host-b", Job: "j", PID: 2}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, err := b.JobBackoff(ctx, backoffB("forge-b", time.Now().Add(time.Hour), "429"), "host-b", "j", "0123456789abcdef"); err != nil ||
		got.SetBy != "job j (run 0123456789abcdef) on host-b" {
		t.Fatalf("b's own back-off: %+v, %v", got, err)
	}
}

func backoffB(lock string, until time.Time, reason string) backoff.B {
	return backoff.B{Lock: lock, Until: until, Reason: reason}
}

// A DSN below sslmode=verify-full is refused unless Insecure says so; the
// test server serves TLS with a throwaway CA, so the default path is tested.
func TestTLSRequired(t *testing.T) {
	d := needPG(t)
	noVerify := strings.Replace(d.tick, "sslmode=verify-full", "sslmode=require", 1)
	if _, err := Connect(context.Background(), Options{DSN: noVerify}); err == nil || !strings.Contains(err.Error(), "sslmode=verify-full") {
		t.Fatalf("sslmode=require: %v", err)
	}
	c, err := Connect(context.Background(), Options{DSN: noVerify, Insecure: true})
	if err != nil {
		t.Fatalf("sslmode=require, insecure: %v", err)
	}
	c.Close()
	plain := strings.Replace(d.tick, "sslmode=verify-full", "sslmode=disable", 1)
	if _, err := Connect(context.Background(), Options{DSN: plain, Insecure: true}); err == nil {
		t.Fatal("the test server took a plaintext connection")
	}
}

// A host whose clock is further from the database's than MaxSkew fails to
// connect, naming both times.
func TestSkew(t *testing.T) {
	d := needPG(t)
	ahead := func() time.Time { return time.Now().Add(time.Hour) }
	_, err := Connect(context.Background(), Options{DSN: d.tick, MaxSkew: 5 * time.Second, Now: ahead})
	// An hour, give or take the query's round trip (the host's reading is
	// its middle; the server's clock_timestamp() need not be).
	if err == nil || !regexp.MustCompile(`this host's clock is (1h0m0(\.\d+)?s|59m59\.9\d*s) ahead of the fleet database's \(host `).MatchString(err.Error()) {
		t.Fatalf("a clock an hour ahead: %v", err)
	}
	c, err := Connect(context.Background(), Options{DSN: d.tick, MaxSkew: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("skew of this host: %s", c.Skew)
	c.Close()
}

// The session settings reach the server as startup parameters, whatever
// the role's defaults (idle_session_timeout on the tick role, here).
func TestSessionSettings(t *testing.T) {
	d := needPG(t)
	exec1(t, d.super, "ALTER ROLE tickgate_tick IN DATABASE tickgate_fleetpkg SET idle_session_timeout = '1s'")
	defer exec1(t, d.super, "ALTER ROLE tickgate_tick IN DATABASE tickgate_fleetpkg RESET idle_session_timeout")
	c := connect(t, d.tick, "settings")
	var idle, stmt, user string
	if err := c.conn.QueryRow(context.Background(), "SELECT current_setting('idle_session_timeout'), current_setting('statement_timeout'), current_setting('tcp_user_timeout')").
		Scan(&idle, &stmt, &user); err != nil {
		t.Fatal(err)
	}
	if idle != "0" || stmt != "3s" || user != "10000" {
		t.Fatalf("idle_session_timeout %s, statement_timeout %s, tcp_user_timeout %s", idle, stmt, user)
	}
}
