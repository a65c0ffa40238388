//go:build chaos

package chaos

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tickgate/tickgate/helper/fleet"
)

var (
	rounds = flag.Int("rounds", 1, "rounds of each fault (make chaos: more)")
	suite  *Suite
	setErr error
)

// The hosts the main cluster maps, each to its own login role: "np" runs
// its ticks in the network namespace.
var mainHosts = []string{"h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9", "np"}

// floaty is the floating singleton every scenario registers: every 10 s.
var floatySchedule = []string{"*:*:0/10"}

func TestMain(m *testing.M) {
	flag.Parse()
	if n, err := strconv.Atoi(os.Getenv("TICKGATE_CHAOS_ROUNDS")); err == nil && n > 0 {
		*rounds = n
	}
	var cleanup func()
	suite, cleanup, setErr = setUp()
	code := m.Run()
	if suite != nil && len(suite.rows) > 0 {
		fmt.Print(suite.Table())
	}
	if cleanup != nil {
		cleanup()
	}
	os.Exit(code)
}

func setUp() (*Suite, func(), error) {
	if os.Geteuid() != 0 {
		return nil, nil, fmt.Errorf("the fault-injection suite needs root (clusters as postgres, cgroups, a network namespace)")
	}
	for _, prog := range []string{"pgbouncer", "faketime", "iptables", "ip", "nsenter", "flock", "psql"} {
		if _, err := exec.LookPath(prog); err != nil {
			return nil, nil, fmt.Errorf("%s not found (make deps installs it)", prog)
		}
	}
	dir, err := os.MkdirTemp("", "tickgate-chaos-")
	if err != nil {
		return nil, nil, err
	}
	var clusters []*Cluster
	cleanup := func() {
		for _, c := range clusters {
			c.stopQuietly()
		}
		tearDownNetns()
		os.RemoveAll(dir)
	}
	fail := func(err error) (*Suite, func(), error) { cleanup(); return nil, nil, err }
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(err)
	}
	s := &Suite{Dir: dir, SuperPW: randomPassword(), AdminPW: randomPassword(), TickPW: randomPassword(), TTL: 6 * time.Second}
	if s.bin, err = pgBin(); err != nil {
		return fail(err)
	}
	root, err := cgroupRoot()
	if err != nil {
		return fail(err)
	}
	s.cgroups = filepath.Join(root, "tickgate-chaos-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(s.cgroups, 0o755); err != nil {
		return fail(err)
	}
	prev := cleanup
	cleanup = func() { prev(); _ = os.Remove(s.cgroups) }
	s.Helper = filepath.Join(dir, "tickgate")
	build := exec.Command("go", "build", "-tags", "urfave_cli_no_docs", "-trimpath", "-o", s.Helper, "github.com/tickgate/tickgate/helper/cmd/tickgate")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("building the helper: %v: %s", err, out))
	}
	if err := makeTLS(dir, "127.0.0.1", netnsOuter); err != nil {
		return fail(err)
	}
	if err := run(exec.Command("chown", "postgres:", filepath.Join(dir, "server.key"))); err != nil {
		return fail(err)
	}
	if err := setUpNetns(); err != nil {
		return fail(err)
	}
	s.Main, err = s.newCluster("main", true)
	if err != nil {
		return fail(err)
	}
	s.Main.Listen = []string{"127.0.0.1", netnsOuter}
	clusters = append(clusters, s.Main)
	if err := s.Main.Start(); err != nil {
		return fail(err)
	}
	if err := s.setUp(s.Main, mainHosts, floaty()); err != nil {
		return fail(err)
	}
	s.track = func(c *Cluster) { clusters = append(clusters, c) }
	return s, cleanup, nil
}

func floaty() map[string]fleet.Singleton {
	return map[string]fleet.Singleton{"floaty": {Schedule: fleet.ScheduleHash(floatySchedule), Interval: 10}}
}

func need(t *testing.T) *Suite {
	t.Helper()
	if setErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(setErr)
		}
		t.Skip(setErr)
	}
	return suite
}

// exec runs sql as the superuser on the cluster at addr.
func (s *Suite) exec(addr, sql string) error {
	return s.asSuper(addr, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, sql)
		return err
	})
}

// queryRow reads one row as the superuser on the cluster at addr.
func (s *Suite) queryRow(addr, sql string, args []any, dest ...any) error {
	return s.asSuper(addr, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, sql, args...).Scan(dest...)
	})
}

// asSuper runs f on a new superuser connection to the cluster at addr,
// bounded by 20 s.
func (s *Suite) asSuper(addr string, f func(context.Context, *pgx.Conn) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN("postgres", addr))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return f(ctx, conn)
}

// sideCluster starts a cluster besides the main one, set up as it is
// (hosts mapped, floaty registered), after set adjusts it; it is stopped
// when the test ends.
func (s *Suite) sideCluster(t testing.TB, name string, hosts []string, set func(*Cluster)) *Cluster {
	t.Helper()
	c, err := s.newCluster(name, true)
	if err != nil {
		t.Fatal(err)
	}
	s.track(c)
	if set != nil {
		set(c)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stopQuietly)
	if err := s.setUp(c, hosts, floaty()); err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *Suite) host(t *testing.T, name string, addrs ...string) *Host {
	t.Helper()
	inNetns := name == "np"
	if len(addrs) == 0 {
		addrs = []string{s.Main.Addr()}
		if inNetns {
			addrs = []string{fmt.Sprintf("%s:%d", netnsOuter, s.Main.Port)}
		}
	}
	h, err := s.NewHost(name, s.DSN(hostRole(name), addrs...), inNetns)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// holderFault is a fault injected into the holder of a fleet lock group
// while two other hosts tick the group every 200 ms.
type holderFault struct {
	name    string
	holder  string  // its host ("np": in the namespace)
	mode    string  // its command (TickOpts.Mode)
	seconds float64 // how long its command runs when the fault does not end it
	flags   []string
	// dies: the fault ends the holder's run, and liveness is measured;
	// else the holder keeps its lease to its command's end.
	dies    bool
	extra   time.Duration // the fault keeps the database away this long (added to the bound)
	promise string
	inject  func(t *testing.T, s *Suite, u *Unit, h *Host) (heal func())
	// check looks at the holder's unit after the round ("" when fine).
	check func(s *Suite, u *Unit) string
}

func TestHolderFaults(t *testing.T) {
	s := need(t)
	for _, f := range holderFaults() {
		t.Run(f.name, func(t *testing.T) { s.runHolderFault(t, f) })
	}
}

func holderFaults() []holderFault {
	return []holderFault{
		{
			name: "holder's backend terminated", holder: "h0", mode: "ignore", seconds: 8,
			promise: "0 overlaps; the holder keeps its lease",
			inject: func(t *testing.T, s *Suite, u *Unit, h *Host) func() {
				if err := s.exec(s.Main.Addr(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tickgate h0 holder'"); err != nil {
					t.Error(err)
				}
				return func() {}
			},
		},
		{
			name: "helper SIGKILLed (grandchild ignores TERM)", holder: "h0", mode: "ignore", dies: true,
			promise: "0 overlaps; liveness <= bound",
			inject: func(t *testing.T, s *Suite, u *Unit, h *Host) func() {
				_ = u.Signal(syscall.SIGKILL)
				return func() {}
			},
		},
		{
			name: "helper frozen (SIGSTOP): the watchdog", holder: "h0", mode: "ignore", dies: true,
			promise: "0 overlaps; liveness <= bound",
			inject: func(t *testing.T, s *Suite, u *Unit, h *Host) func() {
				_ = u.Signal(syscall.SIGSTOP)
				return func() {}
			},
			check: func(s *Suite, u *Unit) string {
				if u.Result != "watchdog" {
					return "the frozen unit ended by " + u.Result + ", not its watchdog"
				}
				return ""
			},
		},
		{
			name: "pg_ctl restart -m fast (5 s graceful stop)", holder: "h0", mode: "slow", seconds: 10,
			promise: "0 overlaps; the holder keeps its lease",
			inject: func(t *testing.T, s *Suite, u *Unit, h *Host) func() {
				if err := s.Main.Restart(); err != nil {
					t.Error(err)
				}
				return func() {}
			},
		},
		{
			name: "server down 8 s (5 s graceful stop)", holder: "h0", mode: "slow", dies: true, extra: 8 * time.Second,
			promise: "0 overlaps; liveness <= 8 s + bound",
			inject: func(t *testing.T, s *Suite, u *Unit, h *Host) func() {
				if err := s.Main.Stop("fast"); err != nil {
					t.Error(err)
				}
				time.Sleep(8 * time.Second)
				if err := s.Main.Start(); err != nil {
					t.Error(err)
				}
				return func() {}
			},
		},
		{
			name: "idle_session_timeout=500ms, helper paused", holder: "h0", mode: "ignore", seconds: 8,
			promise: "0 overlaps; the holder keeps its lease and its session",
			inject: func(t *testing.T, s *Suite, u *Unit, h *Host) func() {
				for _, host := range []string{"h0", "h1", "h2"} {
					if err := s.exec(s.Main.Addr(), "ALTER ROLE "+hostRole(host)+" SET idle_session_timeout = '500ms'"); err != nil {
						t.Error(err)
					}
				}
				before := s.backendPID(t, "tickgate h0 holder")
				// Shorter than the watchdog less a feed's period: a pause
				// the helper must survive.
				_ = u.Signal(syscall.SIGSTOP)
				time.Sleep(400 * time.Millisecond)
				_ = u.Signal(syscall.SIGCONT)
				// Two renewals, each after the session idled longer than
				// the role's setting: the startup parameter overrides it.
				time.Sleep(2500 * time.Millisecond)
				if after := s.backendPID(t, "tickgate h0 holder"); after != before || before == 0 {
					t.Errorf("the holder's backend was %d, then %d: its session did not last", before, after)
				}
				return func() {
					for _, host := range []string{"h0", "h1", "h2"} {
						_ = s.exec(s.Main.Addr(), "ALTER ROLE "+hostRole(host)+" RESET idle_session_timeout")
					}
				}
			},
		},
		{
			name: "holder partitioned (network namespace)", holder: "np", mode: "ignore", dies: true,
			promise: "0 overlaps; liveness <= bound",
			inject: func(t *testing.T, s *Suite, u *Unit, h *Host) func() {
				if err := partition(true); err != nil {
					t.Fatal(err)
				}
				return func() { _ = partition(false) }
			},
		},
		{
			name: "retries under gate_fail open, partitioned", holder: "np", mode: "exit5", seconds: 0.5, dies: true,
			flags:   []string{"--retry-codes", "5", "--retries", "8", "--retry-delay", "1s", "--retry-max-delay", "1s", "--gate-fail", "open"},
			promise: "0 overlaps: no attempt without the lease",
			inject: func(t *testing.T, s *Suite, u *Unit, h *Host) func() {
				if err := partition(true); err != nil {
					t.Fatal(err)
				}
				return func() { _ = partition(false) }
			},
		},
	}
}

func (s *Suite) runHolderFault(t *testing.T, f holderFault) {
	row := Row{Fault: f.name, Rounds: *rounds, Promise: f.promise}
	if f.dies {
		row.Bound = max(s.TTL, f.extra) + Margin
	}
	defer func() { row.Failed = t.Failed(); s.addRow(row) }()
	for round := 0; round < *rounds; round++ {
		hist, err := newHistory(s.Dir)
		if err != nil {
			t.Fatal(err)
		}
		group := fmt.Sprintf("g%d-%d", time.Now().UnixNano()%1e9, round)
		holder := s.host(t, f.holder)
		seconds := f.seconds
		if f.dies && f.mode != "exit5" {
			seconds = 120
		}
		u, err := holder.Tick(hist, TickOpts{Job: "holder", Group: group, Mode: f.mode, Seconds: seconds, Flags: f.flags})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := hist.WaitStart(10*time.Second, func(r Run) bool { return r.Host == f.holder }); !ok {
			u.Stop(time.Second)
			t.Fatalf("round %d: the holder never ran: %s", round, u.Stderr.String())
		}
		var stops []func() []*Unit
		for _, c := range []string{"h1", "h2"} {
			stops = append(stops, s.host(t, c).Contend(hist, TickOpts{Job: "contender", Group: group, Mode: "plain", Seconds: 0.3}))
		}
		time.Sleep(1500 * time.Millisecond)
		faultAt := time.Now()
		heal := f.inject(t, s, u, holder)
		contender := func(r Run) bool { return r.Host != f.holder && r.Start.After(faultAt) }
		if f.dies {
			took, ok := hist.WaitStart(row.Bound+10*time.Second, contender)
			if !ok {
				t.Errorf("round %d: no other host ran within %s of the fault", round, row.Bound+10*time.Second)
			} else {
				live := took.Sub(faultAt)
				row.Liveness = max(row.Liveness, live)
				if live > row.Bound {
					t.Errorf("round %d: another host ran %s after the fault (bound %s)", round, live.Round(time.Millisecond), row.Bound)
				}
			}
		} else {
			u.Wait()
			if u.Exit() != 0 {
				t.Errorf("round %d: the holder exited %d, want 0 (it keeps its lease): %s", round, u.Exit(), u.Stderr.String())
			}
			if _, ok := hist.WaitStart(10*time.Second, contender); !ok {
				t.Errorf("round %d: no other host ran after the holder", round)
			}
		}
		for _, stop := range stops {
			stop()
		}
		if !u.WaitTimeout(s.TTL + 10*time.Second) {
			t.Errorf("round %d: the holder's unit did not end", round)
			_ = u.Signal(syscall.SIGCONT)
			u.kill()
			u.Wait()
		}
		heal()
		hist.Close()
		s.account(t, &row, hist.Runs(), round)
		if f.check != nil {
			if msg := f.check(s, u); msg != "" {
				t.Errorf("round %d: %s", round, msg)
			}
		}
		if !f.dies {
			for _, r := range hist.Runs() {
				if r.Host == f.holder && r.End.Sub(r.Start) < time.Duration(f.seconds*float64(time.Second)) {
					t.Errorf("round %d: the holder's run lasted %s of its %gs", round, r.End.Sub(r.Start).Round(time.Millisecond), f.seconds)
				}
			}
		}
	}
}

// account adds a round's runs to row and fails the test on what the row
// promises never happens.
func (s *Suite) account(t *testing.T, row *Row, runs []Run, round int) {
	t.Helper()
	row.Runs += len(runs)
	for _, r := range runs {
		if r.Escaped {
			t.Errorf("round %d: a run of %s on %s outlived its unit", round, r.Job, r.Host)
		}
	}
	for _, o := range Overlaps(runs) {
		row.Overlaps++
		row.MaxOverlap = max(row.MaxOverlap, o.For)
		if !strings.HasPrefix(row.Promise, "documented") {
			t.Errorf("round %d: overlap of %s: %s on %s (fence %d, %s..%s) and %s on %s (fence %d, from %s)", round, o.For.Round(time.Millisecond),
				o.A.Job, o.A.Host, o.A.Fence, o.A.Start.Format("15:04:05.000"), o.A.End.Format("15:04:05.000"),
				o.B.Job, o.B.Host, o.B.Fence, o.B.Start.Format("15:04:05.000"))
		}
	}
	for _, d := range DoubleSlots(runs) {
		row.DoubleSlots++
		t.Errorf("round %d: slot %s", round, d)
	}
}

// backendPID is the server process of the session named app (0: none).
func (s *Suite) backendPID(t *testing.T, app string) int {
	t.Helper()
	var pid int
	if err := s.queryRow(s.Main.Addr(), "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE application_name = $1", []any{app}, &pid); err != nil {
		t.Error(err)
	}
	return pid
}

// The checker itself: two hosts run one group with host-scoped locks only
// (nothing coordinates them), so their runs overlap, and the history must
// say so, or a 0 in the other rows means nothing.
func TestControlWithoutFleetLockOverlaps(t *testing.T) {
	s := need(t)
	row := Row{Fault: "control: no fleet lock (must overlap)", Rounds: 1, Promise: "documented: overlaps expected"}
	defer func() { row.Failed = t.Failed(); s.addRow(row) }()
	hist, err := newHistory(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var units []*Unit
	for _, h := range []string{"h3", "h4"} {
		u, err := s.host(t, h).Tick(hist, TickOpts{Job: "uncoordinated", Mode: "plain", Seconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		units = append(units, u)
	}
	for _, u := range units {
		u.Wait()
	}
	hist.Close()
	runs := hist.Runs()
	for i := range runs {
		runs[i].Group = "uncoordinated" // what the checker compares
	}
	s.account(t, &row, runs, 0)
	if row.Runs != 2 || row.Overlaps != 1 || row.MaxOverlap < 800*time.Millisecond {
		t.Errorf("the checker saw %d runs, %d overlaps (max %s); want 2, 1, about 1 s", row.Runs, row.Overlaps, row.MaxOverlap)
	}
}
