//go:build chaos

package chaos

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tickgate/tickgate/helper/fleet"
)

// Three hosts tick one group through PgBouncer for a while; halfway, every
// server connection of the tick roles is terminated.
func TestPgBouncer(t *testing.T) {
	s := need(t)
	for _, mode := range []string{"transaction", "session"} {
		t.Run(mode, func(t *testing.T) {
			row := Row{Fault: "PgBouncer, " + mode + " pooling", Rounds: *rounds, Promise: "0 overlaps"}
			defer func() { row.Failed = t.Failed(); s.addRow(row) }()
			hosts := []string{"h5", "h6", "h7"}
			b, err := s.startBouncer("bouncer-"+mode, mode, s.Main, hosts)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Stop()
			for round := 0; round < *rounds; round++ {
				hist, err := newHistory(s.Dir)
				if err != nil {
					t.Fatal(err)
				}
				group := fmt.Sprintf("bouncer-%s-%d", mode, round)
				var stops []func() []*Unit
				for _, h := range hosts {
					stops = append(stops, s.host(t, h, b.Addr()).Contend(hist, TickOpts{Job: "pooled", Group: group, Mode: "plain", Seconds: 0.5}))
				}
				time.Sleep(5 * time.Second)
				if err := s.exec(s.Main.Addr(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename LIKE 'tickgate_tick_%'"); err != nil {
					t.Error(err)
				}
				time.Sleep(5 * time.Second)
				var units []*Unit
				for _, stop := range stops {
					units = append(units, stop()...)
				}
				hist.Close()
				runs := hist.Runs()
				s.account(t, &row, runs, round)
				ran := 0
				for _, u := range units {
					if u.Exit() == 0 {
						ran++
					}
				}
				if len(runs) < 5 || ran != len(runs) {
					t.Errorf("round %d: %d runs recorded, %d ticks exited 0 (of %d): want the same, at least 5", round, len(runs), ran, len(units))
					for _, u := range units[:min(3, len(units))] {
						t.Logf("%s: exit %d: %s", u.Name, u.Exit(), u.Stderr.String())
					}
				}
			}
		})
	}
}

// pair is a new primary with one standby (streaming, synchronous or not),
// set up as the main cluster is. With lagging, the standby is a base backup
// that is not started (it never sees what the primary commits after it):
// an asynchronous standby at its worst.
func (s *Suite) pair(t *testing.T, name string, sync, lagging bool) (primary, standby *Cluster) {
	t.Helper()
	var err error
	if primary, err = s.newCluster(name+"-p", true); err != nil {
		t.Fatal(err)
	}
	s.track(primary)
	if err := primary.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.setUp(primary, mainHosts, floaty()); err != nil {
		t.Fatal(err)
	}
	if standby, err = s.newCluster(name+"-s", false); err != nil {
		t.Fatal(err)
	}
	s.track(standby)
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s sslmode=verify-full sslrootcert=%s application_name=%s",
		primary.Port, s.SuperPW, filepath.Join(s.Dir, "ca.crt"), strings.ReplaceAll(name, "-", "_"))
	if err := run(asPostgres(nil, filepath.Join(s.bin, "pg_basebackup"), "-D", standby.data(), "-c", "fast", "-X", "stream", "-R", "-d", conninfo)); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(standby.data(), "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "primary_conninfo = '%s'\n", conninfo)
	f.Close()
	if lagging {
		return primary, standby
	}
	if err := standby.Start(); err != nil {
		t.Fatal(err)
	}
	if sync {
		app := strings.ReplaceAll(name, "-", "_")
		if err := s.exec(primary.Addr(), "ALTER SYSTEM SET synchronous_standby_names = '"+app+"'"); err != nil {
			t.Fatal(err)
		}
		if err := s.exec(primary.Addr(), "SELECT pg_reload_conf()"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			var state string
			_ = s.queryRow(primary.Addr(), "SELECT coalesce(max(sync_state), '') FROM pg_stat_replication WHERE application_name = $1", []any{app}, &state)
			if state == "sync" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the standby is %q, not sync, after 30 s", state)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return primary, standby
}

// Failover: the old primary is stopped (fenced) and a standby promoted
// while a holder runs; the hosts name both servers (target_session_attrs=
// read-write). A synchronous standby has every lease: the holder keeps its
// own; an asynchronous one that missed it gives the group to another host
// at once (the documented case), and the holder, renewing, learns
// that and kills its job — but the fences stay monotonic either way (the
// new timeline is in their high bits).
func TestFailover(t *testing.T) {
	s := need(t)
	for _, c := range []struct {
		name    string
		sync    bool
		promise string
	}{
		{"synchronous standby promoted", true, "0 overlaps; fences grow"},
		{"asynchronous standby promoted (lagging)", false, "documented: overlap <= lease/6 + the kill; fences grow"},
	} {
		t.Run(c.name, func(t *testing.T) {
			row := Row{Fault: c.name, Rounds: *rounds, Promise: c.promise}
			defer func() { row.Failed = t.Failed(); s.addRow(row) }()
			for round := 0; round < *rounds; round++ {
				primary, standby := s.pair(t, fmt.Sprintf("fo%d-%t", round, c.sync), c.sync, !c.sync)
				hist, err := newHistory(s.Dir)
				if err != nil {
					t.Fatal(err)
				}
				addrs := []string{primary.Addr(), standby.Addr()}
				secs := 10.0
				if !c.sync {
					secs = 120
				}
				group := "failover"
				u, err := s.host(t, "h0", addrs...).Tick(hist, TickOpts{Job: "holder", Group: group, Mode: "ignore", Seconds: secs})
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := hist.WaitStart(10*time.Second, func(r Run) bool { return r.Host == "h0" }); !ok {
					u.Stop(time.Second)
					t.Fatalf("the holder never ran: %s", u.Stderr.String())
				}
				var stops []func() []*Unit
				for _, h := range []string{"h1", "h2"} {
					stops = append(stops, s.host(t, h, addrs...).Contend(hist, TickOpts{Job: "contender", Group: group, Mode: "plain", Seconds: 0.3}))
				}
				time.Sleep(1500 * time.Millisecond)
				if err := primary.Stop("immediate"); err != nil {
					t.Fatal(err)
				}
				if !c.sync {
					if err := standby.Start(); err != nil {
						t.Fatal(err)
					}
				}
				if err := standby.Promote(); err != nil {
					t.Fatal(err)
				}
				if c.sync {
					u.Wait()
					if u.Exit() != 0 {
						t.Errorf("round %d: the holder exited %d, want 0: %s", round, u.Exit(), u.Stderr.String())
					}
				}
				if _, ok := hist.WaitStart(20*time.Second, func(r Run) bool { return r.Host != "h0" }); !ok {
					t.Errorf("round %d: no other host ran after the failover", round)
				}
				time.Sleep(time.Second)
				for _, stop := range stops {
					stop()
				}
				if !u.WaitTimeout(s.TTL + 5*time.Second) {
					t.Errorf("round %d: the holder's unit did not end", round)
					u.kill()
					u.Wait()
				}
				hist.Close()
				runs := hist.Runs()
				s.account(t, &row, runs, round)
				var holderFence int64
				for _, r := range runs {
					if r.Host == "h0" {
						holderFence = r.Fence
					}
				}
				for _, r := range runs {
					if r.Host != "h0" && (r.Fence <= holderFence || r.Fence < 2<<32) {
						t.Errorf("round %d: %s ran with fence %d after the promotion (holder's %d; the new timeline's start %d)", round, r.Host, r.Fence, holderFence, int64(2)<<32)
					}
				}
				if !c.sync {
					if row.MaxOverlap > s.TTL/6+time.Second {
						t.Errorf("round %d: overlap %s, more than the documented lease/6 + 1 s", round, row.MaxOverlap)
					}
					if !strings.Contains(u.Stderr.String(), "fleet lease lost") {
						t.Errorf("round %d: the holder did not say its lease was lost: %s", round, u.Stderr.String())
					}
				}
				primary.stopQuietly()
				standby.stopQuietly()
			}
		})
	}
}

// A whole host paused (its unit's cgroup frozen, systemd's watchdog with
// it) for longer than the lease: another host takes the group, and when
// the paused one thaws, its job runs on for the moment its helper needs
// to notice. Leases cannot prevent that overlap; the fence store does keep
// its writes out: no write with a fence lower than one already written is
// accepted.
func TestPausedHostFencedWrites(t *testing.T) {
	s := need(t)
	row := Row{Fault: "host paused past the lease, fenced writes", Rounds: *rounds, Promise: "documented: overlap after the thaw; 0 stale writes", Bound: s.TTL + Margin}
	defer func() { row.Failed = t.Failed(); s.addRow(row) }()
	var after []string
	for round := 0; round < *rounds; round++ {
		hist, err := newHistory(s.Dir)
		if err != nil {
			t.Fatal(err)
		}
		dir, err := os.MkdirTemp(s.Dir, "resource-")
		if err != nil {
			t.Fatal(err)
		}
		store := filepath.Join(dir, "store")
		group := fmt.Sprintf("paused-%d", round)
		u, err := s.host(t, "h0").Tick(hist, TickOpts{Job: "holder", Group: group, Mode: "fenced", Seconds: 120, Store: store})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := hist.WaitStart(10*time.Second, func(r Run) bool { return r.Host == "h0" }); !ok {
			u.Stop(time.Second)
			t.Fatalf("the holder never ran: %s", u.Stderr.String())
		}
		stop := s.host(t, "h1").Contend(hist, TickOpts{Job: "contender", Group: group, Mode: "fenced", Seconds: 1, Store: store})
		time.Sleep(1500 * time.Millisecond)
		pausedAt := time.Now()
		if err := u.Freeze(true); err != nil {
			t.Fatal(err)
		}
		took, ok := hist.WaitStart(row.Bound+10*time.Second, func(r Run) bool { return r.Host == "h1" && r.Start.After(pausedAt) })
		if !ok {
			t.Errorf("round %d: no other host ran while h0 was paused", round)
		} else {
			row.Liveness = max(row.Liveness, took.Sub(pausedAt))
		}
		time.Sleep(500 * time.Millisecond) // the new holder writes
		thawed := time.Now()
		if err := u.Freeze(false); err != nil {
			t.Fatal(err)
		}
		u.Wait()
		stop()
		hist.Close()
		runs := hist.Runs()
		s.account(t, &row, runs, round)
		for _, r := range runs {
			if r.Host == "h0" {
				after = append(after, r.End.Sub(thawed).Round(time.Millisecond).String())
			}
		}
		stale, writes, err := staleWrites(store + ".log")
		if err != nil {
			t.Fatal(err)
		}
		row.StaleWrites += stale
		if stale > 0 || writes == 0 {
			t.Errorf("round %d: %d writes, %d of them with a fence lower than one written before", round, writes, stale)
		}
	}
	row.Note = "the paused job lived " + strings.Join(after, ", ") + " after the thaw"
}

// staleWrites reads a fenced resource's log (fence, time per accepted
// write, in the order the writes happened: appended under the resource's
// lock) and counts writes whose fence is lower than one before it.
func staleWrites(path string) (stale, writes int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var high int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			return 0, 0, fmt.Errorf("%s: %q", path, sc.Text())
		}
		fence, _ := strconv.ParseInt(fields[0], 10, 64)
		writes++
		if fence < high {
			stale++
		}
		high = max(high, fence)
	}
	return stale, writes, sc.Err()
}

// A cluster a day behind every host (libfaketime in its processes): a
// floating singleton's tick fails closed at connect, naming both clocks;
// with the skew check turned off, its claim of a slot a day ahead of the
// database's clock is refused. Nothing runs.
func TestClockSkew(t *testing.T) {
	s := need(t)
	row := Row{Fault: "clock skew: hosts a day ahead of the database", Rounds: 1, Promise: "no run, no slot claimed"}
	defer func() { row.Failed = t.Failed(); s.addRow(row) }()
	libs, _ := filepath.Glob("/usr/lib/*/faketime/libfaketime.so.1")
	if len(libs) == 0 {
		t.Fatal("libfaketime not found (apt-get install faketime)")
	}
	c := s.sideCluster(t, "skewed", mainHosts, func(c *Cluster) {
		c.Env = []string{"LD_PRELOAD=" + libs[0], "FAKETIME=-1d", "DONT_FAKE_MONOTONIC=1"}
	})
	hist, err := newHistory(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	h := s.host(t, "h0", c.Addr())
	flags := []string{"--singleton", "fleet", "--schedule", floatySchedule[0]}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{flags, "ahead of the fleet database's (host "},
		{append([]string{"--fleet-max-skew", "48h"}, flags...), "further ahead of the fleet database's clock"},
	} {
		u, err := h.Tick(hist, TickOpts{Job: "floaty", Mode: "plain", Seconds: 0.1, Flags: tc.flags})
		if err != nil {
			t.Fatal(err)
		}
		u.Wait()
		if u.Exit() != 78 || !strings.Contains(u.Stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, want 78 saying %q: %s", tc.flags, u.Exit(), tc.want, u.Stderr.String())
		}
	}
	hist.Close()
	s.account(t, &row, hist.Runs(), 0)
	var claimed int
	if err := s.queryRow(c.Addr(), "SELECT count(*) FROM tickgate.slots", nil, &claimed); err != nil || claimed != 0 || row.Runs != 0 {
		t.Errorf("runs %d, slots claimed %d (%v): want none", row.Runs, claimed, err)
	}
}

// A floating singleton armed with another schedule on one host (a rolling
// deploy, a host_vars override): its claims are refused, exit 78
// slot-schedule-mismatch; the hosts with the registered schedule run each
// slot once.
func TestSingletonSchedules(t *testing.T) {
	s := need(t)
	row := Row{Fault: "floating singleton, a host on another schedule", Rounds: *rounds, Promise: "each slot once; the odd host never runs"}
	defer func() { row.Failed = t.Failed(); s.addRow(row) }()
	for round := 0; round < *rounds; round++ {
		hist, err := newHistory(s.Dir)
		if err != nil {
			t.Fatal(err)
		}
		var stops []func() []*Unit
		odd := map[string]bool{}
		for _, h := range []string{"h3", "h4", "h5"} {
			sched := floatySchedule[0]
			if h == "h5" {
				sched = "*:*:0/5"
			}
			o := TickOpts{Job: "floaty", Mode: "plain", Seconds: 0.2, Every: 700 * time.Millisecond,
				Flags: []string{"--singleton", "fleet", "--schedule", sched}}
			stops = append(stops, s.host(t, h).Contend(hist, o))
		}
		time.Sleep(21 * time.Second) // two slots at least
		var units []*Unit
		for i, stop := range stops {
			for _, u := range stop() {
				if i == 2 {
					odd[u.Name] = true
				}
				units = append(units, u)
			}
		}
		hist.Close()
		runs := hist.Runs()
		s.account(t, &row, runs, round)
		slots := map[string]bool{}
		for _, r := range runs {
			slots[r.Slot] = true
			if r.Host == "h5" {
				t.Errorf("round %d: the host on another schedule ran slot %s", round, r.Slot)
			}
		}
		if len(slots) < 2 {
			t.Errorf("round %d: %d slots ran in 21 s of a 10 s schedule", round, len(slots))
		}
		for _, u := range units {
			if odd[u.Name] && (u.Exit() != 78 || !strings.Contains(u.Stderr.String(), "slot-schedule-mismatch")) {
				t.Errorf("round %d: %s: exit %d: %s", round, u.Name, u.Exit(), u.Stderr.String())
				break
			}
		}
	}
}

// Ten fleet lock holders keep their connections while a burst of 100
// ticks (fleet gate only: they hold a connection only to ask it and to
// publish) meets max_connections=20. A tick that cannot connect fails
// closed (78) and does not run; the holders run on.
func TestConnectionBurst(t *testing.T) {
	s := need(t)
	row := Row{Fault: "100 ticks against max_connections=20", Rounds: 1, Promise: "holders run on; no run without its check"}
	defer func() { row.Failed = t.Failed(); s.addRow(row) }()
	c := s.sideCluster(t, "small", mainHosts, func(c *Cluster) { c.Options = []string{"-c max_connections=20"} })
	hist, err := newHistory(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]*Host{}
	for _, n := range mainHosts[:10] {
		hosts[n] = s.host(t, n, c.Addr())
	}
	var holders []*Unit
	for i, n := range mainHosts[:10] {
		// The product's lease (30 s, a 5 s watchdog), not the suite's short
		// one: this is about connections, and a 1 s watchdog asks a holder
		// to be scheduled every second through a fork storm of 100 helpers
		// on 2 cores (the watchdog's own faults are tested above; a holder
		// it killed here once failed this test).
		u, err := hosts[n].Tick(hist, TickOpts{Job: "holder", Group: fmt.Sprintf("g%d", i), Mode: "plain", Seconds: 25, TTL: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		holders = append(holders, u)
	}
	if _, ok := hist.WaitStart(15*time.Second, func(r Run) bool { return r.Job == "holder" && r.Host == "h9" }); !ok {
		t.Fatal("the holders did not start")
	}
	time.Sleep(time.Second)
	var peak int
	var mu sync.Mutex
	polling := make(chan struct{})
	go func() {
		for {
			select {
			case <-polling:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var n int
			if s.queryRow(c.Addr(), "SELECT count(*) FROM pg_stat_activity WHERE usename LIKE 'tickgate_tick_%'", nil, &n) == nil {
				mu.Lock()
				peak = max(peak, n)
				mu.Unlock()
			}
		}
	}()
	var burst []*Unit
	var wg sync.WaitGroup
	var bmu sync.Mutex
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := hosts[mainHosts[i%10]].Tick(hist, TickOpts{Job: fmt.Sprintf("burst%d", i), Mode: "plain", Seconds: 1})
			if err != nil {
				t.Error(err)
				return
			}
			u.Wait()
			bmu.Lock()
			burst = append(burst, u)
			bmu.Unlock()
		}()
	}
	wg.Wait()
	close(polling)
	codes := map[int]int{}
	for _, u := range burst {
		codes[u.Exit()]++
	}
	for _, u := range holders {
		u.Wait()
		if u.Exit() != 0 {
			t.Errorf("holder %s exited %d: %s", u.Name, u.Exit(), u.Stderr.String())
		}
	}
	hist.Close()
	runs := hist.Runs()
	s.account(t, &row, runs, 0)
	burstRuns := 0
	for _, r := range runs {
		if strings.HasPrefix(r.Job, "burst") {
			burstRuns++
		}
	}
	if burstRuns != codes[0] || codes[0]+codes[78] != 100 {
		t.Errorf("burst: exit codes %v, %d runs recorded: every tick runs (0) or fails closed (78) without running", codes, burstRuns)
	}
	mu.Lock()
	row.Note = fmt.Sprintf("burst: %d ran, %d failed closed; peak %d tick connections of 17", codes[0], codes[78], peak)
	mu.Unlock()
}

// Each forgery of the issue, tried with one host's tick role: none works.
func TestForgeries(t *testing.T) {
	s := need(t)
	row := Row{Fault: "forgeries by a host's tick role", Rounds: 1, Promise: "none succeeds"}
	defer func() { row.Failed = t.Failed(); s.addRow(row) }()
	ctx := context.Background()
	own, err := pgx.Connect(ctx, s.DSN(hostRole("h0"), s.Main.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close(ctx)
	if _, err := own.Exec(ctx, `INSERT INTO tickgate.jobs (host, job, record) VALUES ('h0', 'victim', '{"result": "success"}')
		ON CONFLICT (host, job) DO UPDATE SET record = EXCLUDED.record`); err != nil {
		t.Fatal(err)
	}
	var fence int64
	if err := own.QueryRow(ctx, "SELECT fence FROM tickgate.take_lease('forged', 'h0', 'victim', 1, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 60000)").Scan(&fence); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, s.DSN(hostRole("h1"), s.Main.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	hash := fleet.ScheduleHash(floatySchedule)
	// Each attempt, and why it must fail: the error PostgreSQL gives, or
	// "" when it runs and changes nothing (row-level security hides the
	// row; the function answers no).
	attempts := []struct{ what, sql, why string }{
		{"a record for another host", `INSERT INTO tickgate.jobs (host, job, record) VALUES ('h0', 'forged', '{}')`, "row-level security"},
		{"another host's record changed", `UPDATE tickgate.jobs SET record = '{"result": "forged"}' WHERE host = 'h0'`, ""},
		{"a fence set by hand", `UPDATE tickgate.locks SET fence = 9223372036854775807`, "permission denied"},
		{"a lease deleted", `DELETE FROM tickgate.locks`, "permission denied"},
		{"a lease taken for another host", `SELECT tickgate.take_lease('other', 'h0', 'x', 1, 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 60000)`, "may not act for host h0"},
		{"another holder's lease renewed", fmt.Sprintf(`SELECT 1 FROM tickgate.renew_lease('forged', 'h1', 'cccccccccccccccccccccccccccccccc', %d, 60000) WHERE renewed`, fence), ""},
		{"a slot moved to 9999", `UPDATE tickgate.slots SET slot = '9999-01-01'`, "permission denied"},
		{"a slot claimed for 9999", fmt.Sprintf(`SELECT 1 FROM tickgate.claim_slot('floaty', '9999-01-01', 'h1', '%s', 'dddddddddddddddddddddddddddddddd') WHERE status = 'claimed'`, hash), ""},
		{"a back-off inserted", `INSERT INTO tickgate.backoffs (lock_group, until, reason, set_by) VALUES ('forged', '9999-01-01', 'x', 'y')`, "permission denied"},
		{"a back-off of a group it does not hold", `SELECT tickgate.extend_backoff('forged', now() + interval '1 hour', '429', 'h1', 'x', 'abc')`, "does not hold fleet lock group forged"},
		{"a back-off until 9999", `SELECT tickgate.extend_backoff('forged', '9999-01-01', '429', 'h1', 'x', 'abc')`, "at most 7 days ahead"},
		{"another host mapped to its role", `INSERT INTO tickgate.hosts (role, host) VALUES ('tickgate_tick_h1', 'h0')`, "permission denied"},
		{"a singleton's schedule changed", `UPDATE tickgate.singletons SET schedule = 'x'`, "permission denied"},
		{"the fleet gate opened", `UPDATE tickgate.gate SET doc = '{}'`, "permission denied"},
	}
	succeeded := 0
	for _, a := range attempts {
		tag, err := c.Exec(ctx, a.sql)
		switch {
		case err == nil && tag.RowsAffected() > 0:
			succeeded++
			t.Errorf("forgery worked: %s (%s)", a.what, tag)
		case a.why == "" && err != nil, a.why != "" && (err == nil || !strings.Contains(err.Error(), a.why)):
			t.Errorf("%s: %v (%s), want it refused with %q", a.what, err, tag, a.why)
		}
	}
	var rec string
	if err := own.QueryRow(ctx, "SELECT record::text FROM tickgate.jobs WHERE host = 'h0' AND job = 'victim'").Scan(&rec); err != nil || !strings.Contains(rec, "success") {
		t.Errorf("h0's record: %s, %v", rec, err)
	}
	// Text a host may write in its own record (escapes, bidi controls) and
	// a record of the wrong shape: status --fleet prints the one escaped and
	// skips the other, naming it.
	if _, err := c.Exec(ctx, `INSERT INTO tickgate.jobs (host, job, record) VALUES ('h1', 'loud', $1), ('h1', 'broken', '[1, 2]')
		ON CONFLICT (host, job) DO UPDATE SET record = EXCLUDED.record`, `{"result": "failed", "reason": "\u001b]0;pwned\u0007\u001b[2J\u202e"}`); err != nil {
		t.Fatal(err)
	}
	h := s.host(t, "h1")
	cmd := exec.Command(s.Helper, "status", "--fleet")
	cmd.Env = []string{"TICKGATE_FLEET_DSN_FILE=" + filepath.Join(h.Dir, "fleet-tick.dsn"), "TICKGATE_FLEET_HOST=h1",
		"TICKGATE_STATE_ROOT=" + filepath.Join(h.Dir, "state"), "TICKGATE_GATE=" + filepath.Join(h.Dir, "gate.json"),
		"TICKGATE_LOCK_DIR=" + filepath.Join(h.Dir, "lock")}
	out, err := cmd.CombinedOutput()
	if err != nil || strings.ContainsAny(string(out), "\x1b\x07\u202e") || !strings.Contains(string(out), "broken") {
		t.Errorf("status --fleet: %v:\n%q", err, out)
	}
	row.Note = fmt.Sprintf("%d attempts, %d worked; status --fleet escaped and skipped what it must", len(attempts), succeeded)
}
