package e2e

// Fleet coordination through the built binary, against the real PostgreSQL
// `make test` starts (scripts/pgtest). Two envs stand for two hosts: each has
// its own state, lock dir and gate file, and they share the fleet database.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickgate/tickgate/helper/fleet"
	"github.com/tickgate/tickgate/helper/fleet/fleettest"
)

func fleetEnvs(t *testing.T, n int) []*env {
	t.Helper()
	d := fleettest.DB(t, "e2e", func(dsn string) error {
		_, err := fleet.Migrate(context.Background(), fleet.Options{DSN: dsn}, "tickgate_tick", fleet.Registration{})
		return err
	})
	admin, tick := d.Admin, d.Tick
	superDSN = d.Super
	var envs []*env
	for i := 0; i < n; i++ {
		e := newEnv(t)
		for file, dsn := range map[string]string{"fleet-tick.dsn": tick, "fleet-admin.dsn": admin} {
			if err := os.WriteFile(filepath.Join(e.dir, file), []byte(dsn+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		e.extraEnv = append(e.extraEnv, "TICKGATE_FLEET_HOST="+fmt.Sprintf("host%d", i))
		envs = append(envs, e)
	}
	t.Cleanup(func() { // leave the fleet gate open for the next test
		envs[0].run("gate", "open", "--fleet", "--force")
		envs[0].run("gate", "resume", "--all", "--fleet")
	})
	return envs
}

// One 'gate close --fleet' stops new starts on every host, with no deploy;
// gate show names the gate that stops them; reopening lets them run.
func TestFleetGateStopsEveryHost(t *testing.T) {
	hosts := fleetEnvs(t, 2)
	start := time.Now()
	hosts[0].mustCode(0, "gate", "close", "--fleet", "--reason", "release 4.2")
	for i, h := range hosts {
		r := h.mustCode(75, "run", "--fleet", "j", "--", "true")
		if !strings.Contains(r.stderr, `reason="gate-closed: fleet: release 4.2"`) {
			t.Fatalf("host %d: %s", i, r.stderr)
		}
	}
	t.Logf("fleet close to every host refusing: %s", time.Since(start).Round(time.Millisecond))
	show := hosts[1].mustCode(0, "gate", "show")
	if !strings.Contains(show.stdout, "gate: open") || !strings.Contains(show.stdout, "fleet gate: closed: release 4.2") || !strings.Contains(show.stdout, "stops jobs: fleet") {
		t.Fatalf("gate show:\n%s", show.stdout)
	}
	// A host-only tick (no --fleet) is not a fleet member.
	hosts[1].mustCode(0, "run", "local", "--", "true")
	hosts[0].mustCode(0, "gate", "pause", "j", "--fleet", "--reason", "quota")
	hosts[0].mustCode(0, "gate", "open", "--fleet")
	if r := hosts[1].mustCode(75, "run", "--fleet", "j", "--", "true"); !strings.Contains(r.stderr, "job-paused: fleet: quota") {
		t.Fatalf("fleet pause: %s", r.stderr)
	}
	hosts[0].mustCode(0, "gate", "resume", "j", "--fleet")
	hosts[1].mustCode(0, "run", "--fleet", "j", "--", "true")
	// The tick role cannot change the fleet gate.
	if r := hosts[0].run("--fleet-admin-dsn-file", hosts[0].dir+"/fleet-tick.dsn", "gate", "close", "--fleet", "--reason", "x"); r.code != 78 || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("close with the tick role: %d %s", r.code, r.stderr)
	}
}

// The engine unreachable: a tick never hangs; the job's gate_fail policy
// decides, and a fleet-scoped lock group never runs without its lock.
func TestFleetUnreachable(t *testing.T) {
	h := fleetEnvs(t, 1)[0]
	if err := os.WriteFile(h.dir+"/fleet-tick.dsn", []byte(unreachableDSN("tickgate_tick")), 0o600); err != nil {
		t.Fatal(err)
	}
	ran := h.dir + "/ran"
	cases := []struct {
		flags []string
		code  int
		ran   bool
		want  string
	}{
		{[]string{"--fleet"}, 78, false, `reason="fleet-gate-unreachable: connecting to the fleet database 127.0.0.1:1/tickgate as tickgate_tick`},
		{[]string{"--fleet", "--gate-fail", "open"}, 0, true, "warning: job j: fleet-gate-unreachable"},
		{[]string{"--lock-scope", "fleet", "--gate-fail", "open"}, 78, false, "fleet-lock-unavailable"},
	}
	for _, c := range cases {
		os.Remove(ran)
		start := time.Now()
		r := h.mustCode(c.code, append(append([]string{"run", "--fleet-timeout", "1s"}, c.flags...), "j", "--", "touch", ran)...)
		if fileExists(ran) != c.ran || !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr, ":pw@") {
			t.Fatalf("%v: ran=%v\n%s", c.flags, fileExists(ran), r.stderr)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("%v took %s", c.flags, took)
		}
	}
}

// Two helpers on two hosts racing one fleet lock group at the same instant,
// 200 times: never two at once; the fencing token reaches the job and state,
// and grows.
func TestFleetLockRaces(t *testing.T) {
	hosts := fleetEnvs(t, 2)
	shared := t.TempDir()
	mutex := filepath.Join(shared, "mutex")
	script := `mkdir "$0" 2>/dev/null || { echo OVERLAP; exit 9; }; echo "$TICKGATE_FENCE" >>"$1"; sleep 0.01; rmdir "$0"`
	var wins, overlaps int
	for round := 0; round < 200; round++ {
		cmds := make([]*exec.Cmd, len(hosts))
		outs := make([]*strings.Builder, len(hosts))
		for i, h := range hosts {
			cmds[i] = h.cmd("run", "--lock-scope", "fleet", "--lock", "api", "j"+strconv.Itoa(i), "--", "sh", "-c", script, mutex, filepath.Join(shared, "fences"))
			outs[i] = &strings.Builder{}
			cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
		}
		for _, c := range cmds {
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
		}
		for i, c := range cmds {
			err := c.Wait()
			switch code := c.ProcessState.ExitCode(); {
			case code == 0:
				wins++
			case code == 75 && strings.Contains(outs[i].String(), "lock-busy: fleet lock group api"):
			default:
				t.Fatalf("round %d host %d: %v %s", round, i, err, outs[i])
			}
			if strings.Contains(outs[i].String(), "OVERLAP") {
				overlaps++
			}
		}
	}
	data, _ := os.ReadFile(filepath.Join(shared, "fences"))
	fences := strings.Fields(string(data))
	t.Logf("200 races of 2 helpers: %d runs, %d overlaps", wins, overlaps)
	if overlaps != 0 || wins < 200 || len(fences) != wins {
		t.Fatalf("%d overlaps, %d runs, %d fences", overlaps, wins, len(fences))
	}
	prev := int64(0)
	for _, f := range fences {
		n, _ := strconv.ParseInt(f, 10, 64)
		if n <= prev {
			t.Fatalf("fence %d after %d: not growing", n, prev)
		}
		prev = n
	}
	if st := hosts[0].state("j0"); st.LastRun == nil || st.LastRun.Fence == 0 {
		t.Fatalf("no fence recorded: %+v", st.LastRun)
	}
}

// A fleet lock is a lease on the database's clock, not a session: the
// holder's backend terminated, its job runs on (the holder renews on a new
// connection) and no other host takes the group. When the database says the
// lease is gone, the holder kills its job's whole tree at once, records why,
// and the group can be taken elsewhere.
func TestFleetLockLoss(t *testing.T) {
	hosts := fleetEnvs(t, 2)
	ttl := []string{"--fleet-lease-ttl", "6s"}
	c := hosts[0].cmd(append(append([]string{"run"}, ttl...), "--lock-scope", "fleet", "--kill-after", "5s", "victim", "--", "sh", "-c", "trap '' TERM; sleep 60 & wait")...)
	var out strings.Builder
	c.Stderr = &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the victim to run", func() bool {
		st, _ := os.ReadFile(hosts[0].stateDir + "/victim/state.json")
		return strings.Contains(string(st), `"result": "running"`)
	})
	psql(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tickgate host0 victim'")
	time.Sleep(2500 * time.Millisecond) // two renewals
	if r := hosts[1].mustCode(75, "run", "--lock-scope", "fleet", "--lock", "victim", "other", "--", "true"); !strings.Contains(r.stderr, "lock-busy: fleet lock group victim held by job victim on host host0") {
		t.Fatalf("after the holder's backend was terminated: %s", r.stderr)
	}
	if c.ProcessState != nil {
		t.Fatalf("the victim stopped: %s", out.String())
	}
	// The lease taken from it (as an operator's mistake, or a failover that
	// lost it, would): the next renewal says lost, and the tree dies at once
	// (the job ignores SIGTERM; --kill-after is not waited for).
	start := time.Now()
	psql(t, "UPDATE tickgate.locks SET lease_until = now() - interval '1 second' WHERE lock_group = 'victim'")
	err := c.Wait()
	took := time.Since(start)
	if c.ProcessState.ExitCode() != 143 || took > 4*time.Second {
		t.Fatalf("exit %d after %s (%v): %s", c.ProcessState.ExitCode(), took, err, out.String())
	}
	st := hosts[0].state("victim")
	if st.Result != "interrupted" || !strings.HasPrefix(st.Reason, "fleet-lock-lost: fleet lease lost: lock group victim") {
		t.Fatalf("state: %s / %s", st.Result, st.Reason)
	}
	t.Logf("loss noticed and the tree killed %s after the lease was taken away", took.Round(time.Millisecond))
	hosts[1].mustCode(0, "run", "--lock-scope", "fleet", "--lock", "victim", "other", "--", "true")
}

// If tickgate itself is SIGKILLed, its job goes with it (parent-death
// signal; under systemd the unit's cgroup); its lease is not released, so
// no other host takes the group before the lease has ended.
func TestFleetHelperSIGKILL(t *testing.T) {
	hosts := fleetEnvs(t, 2)
	pidFile := hosts[0].dir + "/child.pid"
	c := hosts[0].cmd("run", "--fleet-lease-ttl", "6s", "--lock-scope", "fleet", "orphan", "--", "sh", "-c", `echo $$ >"$0"; exec sleep 60`, pidFile)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the child pid", func() bool { b, _ := os.ReadFile(pidFile); return len(strings.TrimSpace(string(b))) > 0 })
	b, _ := os.ReadFile(pidFile)
	child, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	killed := time.Now()
	_ = c.Process.Signal(syscall.SIGKILL)
	_ = c.Wait()
	waitFor(t, "the child to die with its helper", func() bool { return syscall.Kill(child, 0) != nil })
	hosts[1].mustCode(75, "run", "--lock-scope", "fleet", "--lock", "orphan", "next", "--", "true")
	hosts[1].mustCode(0, "run", "--lock-wait", "10s", "--lock-scope", "fleet", "--lock", "orphan", "next", "--", "true")
	if took := time.Since(killed); took < 4*time.Second || took > 10*time.Second {
		t.Fatalf("the next host ran %s after the holder was killed (its lease: 6s)", took)
	}
}

// superDSN is a superuser's DSN for this package's fleet database.
var superDSN string

// unreachableDSN is a DSN of role at a closed port, with the test server's
// TLS parameters (anything less is refused before connecting).
func unreachableDSN(role string) string {
	return "postgresql://" + role + ":pw@127.0.0.1:1/tickgate?sslmode=verify-full&sslrootcert=" + os.Getenv("TICKGATE_TEST_PG_CA")
}

// registerSingleton registers job as a floating singleton of the schedule
// lines (what the deploy's fleet migrate --register does).
func registerSingleton(t *testing.T, job string, lines []string, interval float64) {
	t.Helper()
	psql(t, fmt.Sprintf(`INSERT INTO tickgate.singletons (job, schedule, interval_seconds) VALUES ('%s', '%s', %g)
		ON CONFLICT (job) DO UPDATE SET schedule = EXCLUDED.schedule, interval_seconds = EXCLUDED.interval_seconds`,
		job, fleet.ScheduleHash(lines), interval))
}

func psql(t *testing.T, sql string) {
	t.Helper()
	if out, err := exec.Command("psql", "-tAc", sql, superDSN).CombinedOutput(); err != nil {
		t.Fatalf("psql: %v: %s", err, out)
	}
}

// Fleet status: one view of every host's jobs from the records each tick
// publishes, the fleet gate, and every fleet lock held now.
func TestFleetStatus(t *testing.T) {
	hosts := fleetEnvs(t, 2)
	hosts[0].mustCode(0, "run", "--fleet", "stat-a", "--", "true")
	hosts[0].mustCode(1, "run", "--fleet", "stat-b", "--", "false")
	long := hosts[1].cmd("run", "--lock-scope", "fleet", "stat-long", "--", "sleep", "3")
	if err := long.Start(); err != nil {
		t.Fatal(err)
	}
	defer long.Wait()
	var fs struct {
		Gate  struct{ State string }
		Hosts []struct {
			Host     string
			LastSeen time.Time `json:"last_seen"`
			Jobs     int
		}
		Jobs []struct {
			Host, Job, Result string
			Running           bool
			Fence             int64
		}
		Locks []struct {
			Lock, Host, Job string
			Fence           int64
		}
	}
	waitFor(t, "the long job's published running record", func() bool {
		r := hosts[0].run("status", "--fleet", "--json")
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &fs) != nil {
			return false
		}
		for _, j := range fs.Jobs {
			if j.Host == "host1" && j.Job == "stat-long" && j.Running {
				return true
			}
		}
		return false
	})
	got := map[string]string{}
	for _, j := range fs.Jobs {
		got[j.Host+"/"+j.Job] = j.Result
	}
	if got["host0/stat-a"] != "success" || got["host0/stat-b"] != "failed" || got["host1/stat-long"] != "running" {
		t.Fatalf("jobs: %v", got)
	}
	if fs.Gate.State != "open" || len(fs.Hosts) < 2 || fs.Hosts[0].Host != "host0" || fs.Hosts[0].LastSeen.IsZero() {
		t.Fatalf("gate %q, hosts %+v", fs.Gate.State, fs.Hosts)
	}
	found := false
	for _, l := range fs.Locks {
		found = found || (l.Lock == "stat-long" && l.Host == "host1" && l.Job == "stat-long" && l.Fence > 0)
	}
	if !found {
		t.Fatalf("lock holders: %+v", fs.Locks)
	}
	text := hosts[1].mustCode(0, "status", "--fleet")
	for _, want := range []string{"fleet gate: open", "host0", "stat-b", "failed", "FLEET LOCK"} {
		if !strings.Contains(text.stdout, want) {
			t.Fatalf("status --fleet lacks %q:\n%s", want, text.stdout)
		}
	}
}

// A floating singleton through the binary: helpers of two hosts started at
// the same instant for the same slot, 50 times over (a new job each time):
// exactly one runs, the other skips naming where the slot ran. The slot
// reaches the job and the state; without the fleet it never runs.
func TestFleetSingletonSlots(t *testing.T) {
	hosts := fleetEnvs(t, 2)
	out := t.TempDir()
	// A daily elapse 12 hours from now: every tick of this test serves the
	// same slot (systemd-analyze computes it), one interval ahead at most.
	at := time.Now().UTC().Add(12 * time.Hour).Truncate(time.Minute)
	slot := at.Format(time.RFC3339)
	lines := []string{at.Format("*-*-* 15:04:00 UTC"), "Mon,Fri 2100-*-* 09:00 UTC"}
	sched := []string{"--singleton", "fleet", "--schedule", lines[0], "--schedule", lines[1]}
	runs := 0
	for round := range 50 {
		job := fmt.Sprintf("float%d", round)
		registerSingleton(t, job, lines, 86400)
		cmds := make([]*exec.Cmd, len(hosts))
		outs := make([]*strings.Builder, len(hosts))
		for i, h := range hosts {
			args := append(append([]string{"run"}, sched...), job, "--", "sh", "-c", `echo "$TICKGATE_FLEET_SLOT $0" >>"$1"`, h.dir, filepath.Join(out, job))
			cmds[i] = h.cmd(args...)
			outs[i] = &strings.Builder{}
			cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
		}
		for _, c := range cmds {
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
		}
		won := 0
		for i, c := range cmds {
			_ = c.Wait()
			switch code := c.ProcessState.ExitCode(); {
			case code == 0:
				won++
			case code == 75 && strings.Contains(outs[i].String(), "slot-taken: the slot ending "+slot+" ran on host"):
			default:
				t.Fatalf("round %d host %d: exit %d\n%s", round, i, code, outs[i])
			}
		}
		data, _ := os.ReadFile(filepath.Join(out, job))
		if got := strings.Split(strings.TrimSpace(string(data)), "\n"); won != 1 || len(got) != 1 || !strings.HasPrefix(got[0], slot+" ") {
			t.Fatalf("round %d: %d won, job saw %q", round, won, data)
		}
		runs++
	}
	// A later tick of the same slot skips; the state says which slot ran.
	var ranOn *env
	for _, h := range hosts {
		if st := h.state("float0"); st.LastRun != nil {
			ranOn = h
			if st.LastRun.Slot == nil || st.LastRun.Slot.Format(time.RFC3339) != slot {
				t.Fatalf("slot not recorded: %+v", st.LastRun)
			}
		}
	}
	if r := ranOn.mustCode(75, append(append([]string{"run"}, sched...), "float0", "--", "true")...); !strings.Contains(r.stderr, "slot-taken") {
		t.Fatal(r.stderr)
	}
	st := hosts[0].mustCode(0, "status", "--fleet", "--json")
	var fs struct {
		Singletons []fleet.Slot `json:"singletons"`
	}
	if err := json.Unmarshal([]byte(st.stdout), &fs); err != nil || len(fs.Singletons) != runs {
		t.Fatalf("status --fleet: %v, %d singletons\n%s", err, len(fs.Singletons), st.stdout)
	}
	if txt := hosts[1].mustCode(0, "status", "--fleet"); !strings.Contains(txt.stdout, "FLOATING SINGLETON") {
		t.Fatalf("status --fleet:\n%s", txt.stdout)
	}

	// Never without its slot: the fleet unreachable (whatever --gate-fail
	// says), a schedule systemd rejects or that never elapses again.
	h := hosts[1]
	good := h.dir + "/fleet-tick.dsn"
	saved, _ := os.ReadFile(good)
	if err := os.WriteFile(good, []byte(unreachableDSN("tickgate_tick")), 0o600); err != nil {
		t.Fatal(err)
	}
	r := h.mustCode(78, append(append([]string{"run", "--fleet-timeout", "1s", "--gate-fail", "open"}, sched...), "floatx", "--", "true")...)
	if !strings.Contains(r.stderr, "fleet-slot-unavailable: connecting to the fleet database") || !strings.Contains(r.stderr, "never runs without its slot") {
		t.Fatal(r.stderr)
	}
	if err := os.WriteFile(good, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"2001-01-01", "someday at noon"} {
		r := h.mustCode(78, "run", "--singleton", "fleet", "--schedule", s, "floaty", "--", "true")
		if !strings.Contains(r.stderr, "fleet-slot-unavailable") {
			t.Fatalf("%q: %s", s, r.stderr)
		}
	}
	h.mustCode(64, "run", "--singleton", "fleet", "floaty", "--", "true")
	h.mustCode(64, "run", "--singleton", "true", "--schedule", "daily", "floaty", "--", "true")
}

// A back-off asked by a job of a fleet-scoped lock group holds on every
// host; it only extends; an operator clears it with the admin role.
func TestFleetBackoff(t *testing.T) {
	hosts := fleetEnvs(t, 2)
	r := hosts[0].mustCode(0, "run", "--lock-scope", "fleet", "--lock", "fapi", "harvest", "--", bin, "backoff", "--for", "1h", "--reason", "429 from api")
	if !strings.Contains(r.stdout, "lock group fapi backs off until") {
		t.Fatal(r.stdout, r.stderr)
	}
	r = hosts[1].mustCode(75, "run", "--lock-scope", "fleet", "--lock", "fapi", "checker", "--", "true")
	if !strings.Contains(r.stderr, `reason="backoff: lock group fapi until `) || !strings.Contains(r.stderr, "(set by job harvest (run ") || !strings.Contains(r.stderr, " on host0)") {
		t.Fatalf("other host:\n%s", r.stderr)
	}
	// Host-scoped jobs of a group of the same name on another host are not fleet members.
	hosts[1].mustCode(0, "run", "--fleet", "--lock", "fapi", "local", "--", "true")
	if out := hosts[1].mustCode(0, "gate", "show").stdout; !strings.Contains(out, "backoff fapi (fleet) until") {
		t.Fatalf("gate show:\n%s", out)
	}
	// The tick role may not clear it; the admin role may.
	if r := hosts[1].run("--fleet-admin-dsn-file", hosts[1].dir+"/fleet-tick.dsn", "backoff", "--clear", "--lock", "fapi", "--fleet"); r.code == 0 || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("clear with the tick role: %d %s", r.code, r.stderr)
	}
	if r := hosts[1].mustCode(0, "backoff", "--clear", "--lock", "fapi", "--fleet"); !strings.Contains(r.stdout, "cleared (was until") {
		t.Fatal(r.stdout)
	}
	hosts[1].mustCode(0, "run", "--lock-scope", "fleet", "--lock", "fapi", "checker", "--", "true")
}

// fleet migrate --check changes nothing and says whether a migrate would do
// anything (exit 1, and what) or not (exit 0): the deploy reopens the gate
// in its first step only then. A schema newer than the helper, or a tick
// role that does not exist, is an error (78).
func TestFleetMigrateCheck(t *testing.T) {
	d := fleettest.DB(t, "e2emigrate", func(string) error { return nil })
	sql := func(dsn, q string) {
		t.Helper()
		if out, err := exec.Command("psql", "-tAc", q, dsn).CombinedOutput(); err != nil {
			t.Fatalf("psql %s: %v: %s", q, err, out)
		}
	}
	sql(d.Admin, "DROP SCHEMA IF EXISTS tickgate CASCADE") // a new fleet, whatever ran before
	h := newEnv(t)
	if err := os.WriteFile(filepath.Join(h.dir, "fleet-admin.dsn"), []byte(d.Admin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(code int, want string, args ...string) string {
		t.Helper()
		r := h.mustCode(code, append([]string{"fleet", "migrate", "--check"}, args...)...)
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Fatalf("migrate --check %v: exit %d\nstdout: %s\nstderr: %s\nwant %q", args, r.code, r.stdout, r.stderr, want)
		}
		return r.stdout + r.stderr
	}
	check(1, "a migrate is needed: the fleet database has no tickgate schema yet")
	h.mustCode(0, "fleet", "migrate")
	check(0, fmt.Sprintf("fleet schema up to date (version %d), role tickgate_tick granted", fleet.SchemaVersion))

	// One grant revoked by hand, one given that ticks must not hold (a
	// direct write of the locks): a migrate puts both right.
	sql(d.Admin, "REVOKE EXECUTE ON FUNCTION tickgate.take_lease(text, text, text, int, text, int) FROM tickgate_tick")
	check(1, "role tickgate_tick lacks some of the tick role's grants")
	h.mustCode(0, "fleet", "migrate")
	check(0, "up to date")
	sql(d.Admin, "GRANT INSERT, UPDATE ON tickgate.locks TO tickgate_tick")
	check(1, "or holds some it must not")
	h.mustCode(0, "fleet", "migrate")
	check(0, "up to date")

	// The hosts' roles and the floating singletons' schedules the deploy
	// registers: missing, or another role, until a migrate registers them.
	reg := `{"hosts": {"web1": "tickgate_tick"}, "singletons": {"nightly": {"schedule": "` + fleet.ScheduleHash([]string{"daily"}) + `", "interval": 86400}}}`
	check(1, "host web1 is not registered as role tickgate_tick", "--register", reg)
	h.mustCode(0, "fleet", "migrate", "--register", reg)
	check(0, "up to date", "--register", reg)
	sql(d.Admin, "UPDATE tickgate.singletons SET interval_seconds = 3600 WHERE job = 'nightly'")
	check(1, "floating singleton nightly is not registered with this schedule", "--register", reg)
	h.mustCode(0, "fleet", "migrate", "--register", reg)
	check(0, "up to date", "--register", reg)
	h.mustCode(64, "fleet", "migrate", "--register", `{"hosts": {"bad host": "r"}}`)

	// Another tick role, not granted yet; one that does not exist.
	sql(d.Super, "DROP ROLE IF EXISTS tickgate_tick2; CREATE ROLE tickgate_tick2")
	t.Cleanup(func() {
		_ = exec.Command("psql", "-tAc", "DROP OWNED BY tickgate_tick2; DROP ROLE tickgate_tick2", d.Super).Run()
	})
	check(1, "role tickgate_tick2 lacks", "--tick-role", "tickgate_tick2")
	check(78, `role "no_such_role" does not exist`, "--tick-role", "no_such_role")

	// An older schema needs a migrate; a newer one is refused.
	sql(d.Admin, fmt.Sprintf("UPDATE tickgate.meta SET version = %d", fleet.SchemaVersion-1))
	check(1, fmt.Sprintf("the fleet schema is version %d, this helper's is %d", fleet.SchemaVersion-1, fleet.SchemaVersion))
	sql(d.Admin, fmt.Sprintf("UPDATE tickgate.meta SET version = %d", fleet.SchemaVersion+1))
	check(78, "newer than this helper understands")
	sql(d.Admin, fmt.Sprintf("UPDATE tickgate.meta SET version = %d", fleet.SchemaVersion))
	check(0, "up to date")

	// The database unreachable: an error within the fleet timeout, never a hang.
	if err := os.WriteFile(filepath.Join(h.dir, "fleet-admin.dsn"), []byte(unreachableDSN("tickgate_admin")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out := check(78, "connecting to the fleet database 127.0.0.1:1/tickgate as tickgate_admin", "--fleet-timeout", "1s")
	if strings.Contains(out, ":pw@") {
		t.Fatalf("the password in the output: %s", out)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("migrate --check against an unreachable database took %s", took)
	}
}

// gate check gives the tick's answer for the fleet's checks too: the fleet
// gate and a fleet lock group's back-off, as an operator (the job's fleet
// flags from its state.json) and from inside the running job (its
// supervisor holds the fleet connection a job's user cannot); and a fleet
// that cannot be asked stops both by the job's --gate-fail.
func TestFleetGateCheckAgreesWithTheTick(t *testing.T) {
	h := fleetEnvs(t, 1)[0]
	h.extraEnv = append(h.extraEnv, "PATH="+filepath.Dir(bin)+":/usr/bin:/bin")
	flags := []string{"--lock-scope", "fleet", "--lock", "fg"}
	h.mustCode(0, append(append([]string{"run"}, flags...), "j", "--", "true")...)
	for _, c := range []struct {
		name        string
		apply, undo []string
		prefix      string
	}{
		{"fleet gate closed", []string{"gate", "close", "--fleet", "--reason", "release 5"}, []string{"gate", "open", "--fleet"}, "gate-closed: fleet: release 5"},
		{"fleet job paused", []string{"gate", "pause", "j", "--fleet", "--reason", "quota"}, []string{"gate", "resume", "j", "--fleet"}, "job-paused: fleet: quota"},
		{"fleet back-off", []string{"backoff", "--fleet", "--lock", "fg", "--for", "1h", "--reason", "429"}, []string{"backoff", "--clear", "--fleet", "--lock", "fg"}, "backoff: lock group fg until"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h.mustCode(0, c.apply...)
			if r := h.mustCode(75, append(append([]string{"run"}, flags...), "j", "--", "true")...); !strings.Contains(r.stderr, c.prefix) {
				t.Fatalf("tick: %s", r.stderr)
			}
			if r := h.mustCode(75, "gate", "check", "j"); !strings.Contains(r.stderr, c.prefix) {
				t.Fatalf("gate check: %s", r.stderr)
			}
			h.mustCode(0, c.undo...)
			out := h.checkInsideJob(t, flags, func() { h.mustCode(0, c.apply...) })
			h.mustCode(0, c.undo...)
			if !strings.Contains(out, "code=75") || !strings.Contains(out, c.prefix) {
				t.Fatalf("gate check inside the job: %s", out)
			}
		})
	}
	// The fleet unreachable: the tick and gate check both stop the job (a
	// fleet-scoped lock group never runs without its fleet lock).
	if err := os.WriteFile(h.dir+"/fleet-tick.dsn", []byte(unreachableDSN("tickgate_tick")), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := h.mustCode(78, append(append([]string{"run", "--fleet-timeout", "1s"}, flags...), "j", "--", "true")...); !strings.Contains(r.stderr, "fleet-lock-unavailable") {
		t.Fatalf("tick, fleet unreachable: %s", r.stderr)
	}
	if r := h.mustCode(78, "--fleet-timeout", "1s", "gate", "check", "j"); !strings.Contains(r.stderr, "fleet-lock-unavailable") {
		t.Fatalf("gate check, fleet unreachable: %s", r.stderr)
	}
}

// Fleet records are other hosts' words: status --fleet prints their text
// escaped, as every printer does (text and JSON, and --printable).
func TestFleetStatusEscapesRecords(t *testing.T) {
	h := fleetEnvs(t, 1)[0]
	h.mustCode(0, "run", "--fleet", "j", "--", "true")
	rec, _ := json.Marshal(map[string]any{"lock": "x\x1b[2J", "result": "failed", "reason": hostileText, "running": true, "pid": 1})
	psql(t, fmt.Sprintf("INSERT INTO tickgate.jobs (host, job, record) VALUES (%s, %s, %s::jsonb)",
		sqlQuote("evil\x1b]0;x\x07host"), sqlQuote("job\u202e"), sqlQuote(string(rec))))
	psql(t, `INSERT INTO tickgate.jobs (host, job, record) VALUES ('host0', 'broken', '"not a record"'::jsonb)`)
	for _, args := range [][]string{{"status", "--fleet"}, {"status", "--fleet", "--json"}, {"status", "--fleet", "--json", "--printable"}} {
		r := h.mustCode(0, args...)
		if !strings.Contains(r.stderr, "warning: status --fleet: host host0 job broken: the record does not parse") {
			t.Errorf("%v: the malformed row is not named: %s", args, r.stderr)
		}
		if bad := unsafeIn(r.stdout + r.stderr); bad != "" {
			t.Errorf("%v holds %s:\n%s", args, bad, r.stdout)
		}
		if !strings.Contains(r.stdout, "evil") {
			t.Errorf("%v lost the forged row:\n%s", args, r.stdout)
		}
	}
}

func sqlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// A fleet-scope dependency (requires: {job, succeeded_within, scope: fleet})
// sees the required job's success on another host, passes over a forged
// record dated ahead of the database's clock, and fails closed without the
// fleet.
func TestFleetRequires(t *testing.T) {
	hosts := fleetEnvs(t, 2)
	dep := `[{"job": "export", "succeeded_within": "1h", "scope": "fleet"}]`
	if r := hosts[1].mustCode(75, "run", "--fleet", "--requires", dep, "publish", "--", "true"); !strings.Contains(r.stderr, `reason="dependency-stale: export never succeeded on any host (needs 1h)"`) {
		t.Fatalf("no success anywhere: %s", r.stderr)
	}
	// A record of another host, dated far ahead: not believed.
	rec, _ := json.Marshal(map[string]any{"result": "success", "last_success_at": "2099-01-01T00:00:00Z"})
	psql(t, fmt.Sprintf("INSERT INTO tickgate.jobs (host, job, record) VALUES ('host9', 'export', %s::jsonb)", sqlQuote(string(rec))))
	hosts[1].mustCode(75, "run", "--fleet", "--requires", dep, "publish", "--", "true")
	// export succeeds on host0: publish runs on host1.
	hosts[0].mustCode(0, "run", "--fleet", "export", "--", "true")
	hosts[1].mustCode(0, "run", "--fleet", "--requires", dep, "publish", "--", "true")
	// A success older than the window: stale, with its age.
	psql(t, `UPDATE tickgate.jobs SET record = jsonb_set(record, '{last_success_at}', to_jsonb(to_char((now() - interval '3 hours') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))) WHERE job = 'export' AND host = 'host0'`)
	if r := hosts[1].mustCode(75, "run", "--fleet", "--requires", dep, "publish", "--", "true"); !strings.Contains(r.stderr, `reason="dependency-stale: export last succeeded 3h ago on any host (needs 1h)"`) {
		t.Fatalf("stale: %s", r.stderr)
	}
	// The fleet cannot be asked: a skip naming why, never a guess.
	hosts[1].extraEnv = append(hosts[1].extraEnv, "TICKGATE_FLEET_TIMEOUT=1s")
	if err := os.WriteFile(hosts[1].dir+"/fleet-tick.dsn", []byte(unreachableDSN("tickgate_tick")), 0o600); err != nil {
		t.Fatal(err)
	}
	r := hosts[1].run("run", "--fleet", "--gate-fail", "open", "--requires", dep, "publish", "--", "true")
	if r.code != 75 || !strings.Contains(r.stderr, `reason="dependency-stale: export: last success not known: `) {
		t.Fatalf("fleet down: exit %d: %s", r.code, r.stderr)
	}
}

// start --fleet, the requester's side (the taker needs systemd: molecule
// fleet): one request per job while one waits, --wait reports the host that
// took it and exits with the run's code, a manual tick of a floating
// singleton claims no slot, and a job that is no floating singleton is
// refused.
func TestFleetStartRequest(t *testing.T) {
	h := fleetEnvs(t, 2)
	registerSingleton(t, "floaty2", []string{"*:*:0/10"}, 10)
	r := h[0].mustCode(0, "start", "--fleet", "floaty2")
	if !strings.Contains(r.stdout, "job floaty2: fleet start #") {
		t.Fatalf("request: %s", r.stdout)
	}
	id := strings.TrimSuffix(strings.Fields(strings.SplitN(r.stdout, "#", 2)[1])[0], ";")
	if r2 := h[1].mustCode(0, "start", "--fleet", "floaty2"); !strings.Contains(r2.stdout, "#"+id+" requested") {
		t.Fatalf("a second request while one waits is the same one (#%s): %s", id, r2.stdout)
	}
	if r := h[0].run("start", "--fleet", "nosuch"); r.code != 1 || !strings.Contains(r.stderr, "not a floating singleton") {
		t.Fatalf("not a floating singleton: %d %s", r.code, r.stderr)
	}
	// --wait follows it: a host takes and reports it (as take-starts would).
	c := h[1].cmd("start", "--fleet", "--wait", "--timeout", "20s", "floaty2")
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	psql(t, "UPDATE tickgate.starts SET taken_by = 'host1', taken_at = now() WHERE id = "+id)
	time.Sleep(500 * time.Millisecond)
	psql(t, "UPDATE tickgate.starts SET finished_at = now(), result = 'failed', exit_code = 3, reason = 'exit code 3 is not an ok code', "+
		"duration_seconds = 1.25, invocation = '0123456789abcdef0123456789abcdef' WHERE id = "+id)
	if code := exitCode(c.Wait()); code != 3 {
		t.Fatalf("--wait exited %d, want the run's 3: %s %s", code, out.String(), errb.String())
	}
	want := "job floaty2: ran on host host1: failed (exit code 3 is not an ok code), exit 3, 1.25s (fleet start #" + id + ")"
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "journalctl _SYSTEMD_INVOCATION_ID=0123456789abcdef0123456789abcdef") {
		t.Fatalf("--wait printed:\n%s\nwant %q", out.String(), want)
	}
	// Nobody takes it: --timeout gives up with 124.
	h[0].mustCode(0, "start", "--fleet", "floaty2")
	if r := h[0].run("start", "--fleet", "--wait", "--timeout", "600ms", "floaty2"); r.code != 124 || !strings.Contains(r.stderr, "no host has taken it yet") {
		t.Fatalf("timeout: %d %s", r.code, r.stderr)
	}
	// Another host's report is its words: printed escaped.
	c = h[0].cmd("start", "--fleet", "--wait", "--timeout", "10s", "floaty2")
	out.Reset()
	errb.Reset()
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	psql(t, "UPDATE tickgate.starts SET taken_by = 'host1', taken_at = now(), finished_at = now(), result = "+sqlQuote("ok\x1b[2J")+
		", exit_code = 0, reason = "+sqlQuote(hostileText)+" WHERE taken_by IS NULL")
	if code := exitCode(c.Wait()); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	if bad := unsafeIn(out.String() + errb.String()); bad != "" || !strings.Contains(out.String(), "ran on host host1") {
		t.Fatalf("a hostile report printed raw (%s):\n%s", bad, out.String())
	}
	// The taken run: an operator's tick of a floating singleton claims no slot.
	e := h[0]
	if err := os.MkdirAll(filepath.Join(e.stateDir, "floaty2"), 0o755); err != nil {
		t.Fatal(err)
	}
	req := fmt.Sprintf(`{"at": %q, "by": "fleet start #%s"}`, time.Now().UTC().Format(time.RFC3339), id)
	if err := os.WriteFile(filepath.Join(e.stateDir, "floaty2", "start-request"), []byte(req), 0o644); err != nil {
		t.Fatal(err)
	}
	r = e.mustCode(0, "run", "--fleet", "--singleton", "fleet", "--schedule", "*:*:0/10", "floaty2", "--", "sh", "-c", `echo "slot=[$TICKGATE_FLEET_SLOT]"`)
	if !strings.Contains(r.stdout, "slot=[]") {
		t.Fatalf("a manual run got a slot: %s", r.stdout)
	}
	out2, err := exec.Command("psql", "-tAc", "SELECT count(*) FROM tickgate.slots WHERE job = 'floaty2'", superDSN).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out2)) != "0" {
		t.Fatalf("slots claimed by a manual run: %s %v", out2, err)
	}
}

// A fleet lock group of N slots (--lock-scope fleet --lock-slots 2): 5 runs
// on two hosts at once, each waiting for a slot, never more than 2 at a
// time fleet-wide and on no host more than its own host slots allow; each
// holds a lease of its own (api, api#1) with its own fence.
func TestFleetLockSlots(t *testing.T) {
	hosts := fleetEnvs(t, 2)
	dir := t.TempDir()
	running := filepath.Join(dir, "running")
	if err := os.Mkdir(running, 0o777); err != nil {
		t.Fatal(err)
	}
	seen := filepath.Join(dir, "seen")
	body := `touch "$0/$$"; ls "$0" | wc -l >> "$1"; echo "$TICKGATE_FENCE" >> "$1.fences"; sleep 0.7; rm "$0/$$"`
	var cmds []*exec.Cmd
	var errs []*bytes.Buffer
	for i := 0; i < 5; i++ {
		h := hosts[i%2]
		c := h.cmd("run", "--lock-scope", "fleet", "--lock", "fapi", "--lock-slots", "2", "--lock-wait", "20s",
			fmt.Sprintf("job%d", i), "--", "sh", "-c", body, running, seen)
		var b bytes.Buffer
		c.Stderr = &b
		cmds, errs = append(cmds, c), append(errs, &b)
	}
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if code := exitCode(c.Wait()); code != 0 {
			t.Errorf("run %d exited %d: %s", i, code, errs[i].String())
		}
	}
	data, _ := os.ReadFile(seen)
	counts := strings.Fields(string(data))
	most := 0
	for _, f := range counts {
		if n, _ := strconv.Atoi(f); n > most {
			most = n
		}
	}
	if len(counts) != 5 || most != 2 {
		t.Fatalf("%d ran, at most %d at once; want 5 and 2", len(counts), most)
	}
	// Without a wait, with both slots held: lock-busy naming the slots.
	a, _ := hosts[0].startRun("hold0", "--lock-scope", "fleet", "--lock", "fapi", "--lock-slots", "2", "hold0", "--", "sleep", "30")
	b, _ := hosts[1].startRun("hold1", "--lock-scope", "fleet", "--lock", "fapi", "--lock-slots", "2", "hold1", "--", "sleep", "30")
	defer func() {
		for _, p := range []*exec.Cmd{a, b} {
			_ = p.Process.Signal(syscall.SIGTERM)
			_ = p.Wait()
		}
	}()
	r := hosts[0].mustCode(75, "run", "--lock-scope", "fleet", "--lock", "fapi", "--lock-slots", "2", "late", "--", "true")
	if !strings.Contains(r.stderr, `reason="lock-busy: fleet lock group fapi all 2 slots are held (slot 1: held by`) {
		t.Fatalf("busy: %s", r.stderr)
	}
	out, err := exec.Command("psql", "-tAc", "SELECT string_agg(lock_group, ' ' ORDER BY lock_group) FROM tickgate.locks WHERE lease_until > now() AND lock_group LIKE 'fapi%'", superDSN).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "fapi fapi#1" {
		t.Fatalf("leases held: %q %v", out, err)
	}
}

// The fleet's blackout windows (registered by the deploy's fleet migrate
// --register): every fleet tick of a job they cover skips, whatever its
// host's own list; gate show and gate check --fleet say so.
func TestFleetBlackouts(t *testing.T) {
	h := fleetEnvs(t, 2)
	t.Cleanup(func() { psql(t, "DELETE FROM tickgate.blackouts") })
	since := time.Now().UTC().Add(-time.Minute).Format("2006-01-02 15:04:05")
	reg := `{"blackouts": [{"name": "freeze", "calendar": "` + since + ` UTC", "duration": "1h", "locks": ["billing"]}]}`
	if r := h[0].mustCode(1, "fleet", "migrate", "--check", "--register", reg); !strings.Contains(r.stderr+r.stdout, "the fleet's blackout windows are not the play's") {
		t.Fatalf("check before: %s %s", r.stdout, r.stderr)
	}
	h[0].mustCode(0, "fleet", "migrate", "--register", reg)
	h[0].mustCode(0, "fleet", "migrate", "--check", "--register", reg)
	r := h[1].mustCode(75, "run", "--fleet", "--lock", "billing", "invoice", "--", "true")
	if !strings.Contains(r.stderr, `reason="blackout: fleet: freeze until `) {
		t.Fatalf("a covered job: %s", r.stderr)
	}
	h[1].mustCode(0, "run", "--fleet", "report", "--", "true")
	if r := h[0].run("gate", "check", "--fleet", "--lock", "billing", "invoice"); r.code != 75 || !strings.Contains(r.stderr, "blackout: fleet: freeze until") {
		t.Fatalf("gate check: %d %s", r.code, r.stderr)
	}
	if r := h[0].mustCode(0, "gate", "show"); !strings.Contains(r.stdout, "blackout freeze: ") || !strings.Contains(r.stdout, "(lock groups billing): OPEN until") {
		t.Fatalf("gate show:\n%s", r.stdout)
	}
	// A window the helper cannot read is refused at registration.
	if r := h[0].run("fleet", "migrate", "--register", `{"blackouts": [{"name": "bad"}]}`); r.code != 64 || !strings.Contains(r.stderr, "blackouts: window bad: calendar") {
		t.Fatalf("a bad window: %d %s", r.code, r.stderr)
	}
	// An empty list clears them.
	h[0].mustCode(0, "fleet", "migrate", "--register", `{"blackouts": []}`)
	h[1].mustCode(0, "run", "--fleet", "--lock", "billing", "invoice", "--", "true")
}
