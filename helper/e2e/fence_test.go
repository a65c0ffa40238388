package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tickgate/tickgate/helper/fleet"
	"github.com/tickgate/tickgate/helper/fleet/fleettest"
)

// A job with a fleet lock asks its supervisor whether it may still write
// (tickgate fence check), and guards its resource with a fence store.
// When the supervisor can no longer renew the lease (its host's role can no
// longer log in: renewals fail as in a partition), the job hears "not held"
// within half the lease, its tree is killed before the lease ends by the
// database's clock, and the fence store refuses the old holder once a new
// one wrote.
func TestFenceCheck(t *testing.T) {
	// A database of its own: its host's records would show in another
	// test's fleet status.
	d := fleettest.DB(t, "e2efence", func(dsn string) error {
		_, err := fleet.Migrate(context.Background(), fleet.Options{DSN: dsn}, "tickgate_tick", fleet.Registration{})
		return err
	})
	superDSN = d.Super
	holder, next := newEnv(t), newEnv(t)
	for e, dsn := range map[*env]string{holder: d.HostDSN(t, "fencer"), next: d.Tick} {
		if err := os.WriteFile(filepath.Join(e.dir, "fleet-tick.dsn"), []byte(dsn+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	holder.extraEnv = append(holder.extraEnv, "TICKGATE_FLEET_HOST=fencer")
	next.extraEnv = append(next.extraEnv, "TICKGATE_FLEET_HOST=host1")
	t.Cleanup(func() { psql(t, "ALTER ROLE tickgate_tick_fencer LOGIN") })

	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "store")
	// The loop's checks run in a session of their own: the SIGTERM the
	// supervisor sends the job's process group when the lease is no longer
	// sure can reach a check in flight (exit 143: also "do not write"), and
	// the test reads the answer the supervisor gives.
	script := `trap '' TERM
tg=$1 d=$2
"$tg" fence check >"$d/held.out" 2>&1; echo $? >"$d/held.rc"
"$tg" fence check --store "$d/store" >"$d/store.out" 2>&1; echo $? >"$d/store.rc"
echo "$TICKGATE_FENCE" >"$d/fence"
touch "$d/ready"
while :; do
  setsid "$tg" fence check >"$d/last.out" 2>&1 || { rc=$?; date +%s%N >"$d/lost.at"; echo $rc >"$d/lost.rc"; exec sleep 60; }
  sleep 0.1
done`
	c := holder.cmd("run", "--fleet-lease-ttl", "6s", "--lock-scope", "fleet", "--kill-after", "30s", "fenced", "--", "/bin/sh", "-c", script, "sh", bin, dir)
	var out strings.Builder
	c.Stderr = &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the job to be ready", func() bool { _, err := os.Stat(dir + "/ready"); return err == nil })
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return strings.TrimSpace(string(b))
	}
	fence := read("fence")
	if read("held.rc") != "0" || !strings.HasPrefix(read("held.out"), "fence "+fence+" of lock group fenced: held") {
		t.Fatalf("fence check in the job: %s: %s", read("held.rc"), read("held.out"))
	}
	if read("store.rc") != "0" || read("store") != fence {
		t.Fatalf("fence check --store: %s: %s; store %q", read("store.rc"), read("store.out"), read("store"))
	}

	// Renewals fail from now on.
	fault := time.Now()
	psql(t, "ALTER ROLE tickgate_tick_fencer NOLOGIN")
	psql(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'tickgate_tick_fencer'")
	waitFor(t, "the job to hear its lease is not held", func() bool { return read("lost.rc") != "" })
	lostAt, err := strconv.ParseInt(read("lost.at"), 10, 64)
	if err != nil {
		t.Fatalf("when the job heard it: %v", err)
	}
	if read("lost.rc") != "1" || !strings.Contains(read("last.out"), "not held") {
		t.Fatalf("after the fault: %s: %s", read("lost.rc"), read("last.out"))
	}
	// Half the lease after the last renewal (sent at most a sixth before the
	// fault), plus the job's polling.
	if took := time.Unix(0, lostAt).Sub(fault); took < 0 || took > 3500*time.Millisecond {
		t.Fatalf("the job heard it %s after the fault", took)
	}
	_ = c.Wait()
	died := time.Now()
	var until time.Time
	if err := queryRow(d.Super, "SELECT lease_until FROM tickgate.locks WHERE lock_group = 'fenced'", &until); err != nil {
		t.Fatal(err)
	}
	if !died.Before(until) {
		t.Fatalf("the job's tree died at %s, not before its lease ended (%s)", died.Format(time.RFC3339Nano), until.Format(time.RFC3339Nano))
	}
	if st := holder.state("fenced"); st.Result != "interrupted" || !strings.HasPrefix(st.Reason, "fleet-lock-lost:") {
		t.Fatalf("state %s: %s (%s)", st.Result, st.Reason, out.String())
	}
	t.Logf("not held %s after the fault; tree killed %s before the lease's end",
		time.Unix(0, lostAt).Sub(fault).Round(time.Millisecond), until.Sub(died).Round(time.Millisecond))

	// The next holder (after the lease ended) writes with a higher fence;
	// the old one is refused by the store from then on.
	r := next.mustCode(0, "run", "--lock-wait", "10s", "--lock-scope", "fleet", "--lock", "fenced", "next", "--",
		bin, "fence", "check", "--store", store)
	if !strings.Contains(r.stdout, "admitted at "+store+" (it had seen "+fence+")") {
		t.Fatalf("the next holder: %s", r.stdout)
	}
	r = next.mustCode(1, "fence", "check", "--store", store, "--fence", fence)
	if !strings.Contains(r.stderr, "stale fence: fence "+fence+", but "+store+" has seen ") {
		t.Fatalf("the old holder's fence: %s", r.stderr)
	}
	next.mustCode(64, "fence", "check")
	if r := next.mustCode(70, "run", "fencing-without-lock", "--", bin, "fence", "check"); !strings.Contains(r.stderr, "holds no fleet lock") {
		t.Fatalf("a job without a fleet lock: %s", r.stderr)
	}
}

func queryRow(dsn, sql string, dest ...any) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, sql).Scan(dest...); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}
