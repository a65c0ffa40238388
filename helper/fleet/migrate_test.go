package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tickgate/tickgate/helper/fleet/fleettest"
)

// Moving a schema-4 database (session advisory locks) to leases is refused
// while a helper of that release holds a group: a new helper would not see
// its lock and could take the group at once. Once it let go, the move goes
// through, and the group's fence carries on from where it was.
func TestMigrationToLeasesWaitsForAdvisoryHolders(t *testing.T) {
	ctx := context.Background()
	d := fleettest.DB(t, "schema4", func(dsn string) error {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS tickgate CASCADE; CREATE SCHEMA tickgate;
				CREATE TABLE tickgate.meta (version int NOT NULL); INSERT INTO tickgate.meta VALUES (4)`); err != nil {
				return err
			}
			for _, m := range migrations[:4] {
				if _, err := tx.Exec(ctx, m); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, "INSERT INTO tickgate.locks (lock_group, fence, host, job, pid, since) VALUES ('nightly', 41, 'web1', 'harvest', 7, now())")
			return err
		})
	})
	// A helper of the older release holds "nightly" as its session lock.
	old, err := pgx.Connect(ctx, d.Super)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close(ctx)
	sum := sha256.Sum256([]byte("tickgate-lock:nightly"))
	key := int64(binary.BigEndian.Uint64(sum[:8]))
	var got bool
	if err := old.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil || !got {
		t.Fatalf("advisory lock: %v %v", got, err)
	}
	_, err = Migrate(ctx, Options{DSN: d.Admin}, "tickgate_tick", Registration{})
	if err == nil || !strings.Contains(err.Error(), "held by helpers of an older release (session locks): nightly (job harvest on host web1)") {
		t.Fatalf("migrating under an advisory holder: %v", err)
	}
	if v := schemaVersionOf(t, d.Super); v != 4 {
		t.Fatalf("schema %d after a refused migration", v)
	}
	if _, err := old.Exec(ctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
		t.Fatal(err)
	}
	if applied, err := Migrate(ctx, Options{DSN: d.Admin}, "tickgate_tick", Registration{Hosts: map[string]string{"host0": "tickgate_tick"}}); err != nil || len(applied) != SchemaVersion-4 || applied[0] != 5 || applied[len(applied)-1] != SchemaVersion {
		t.Fatalf("migrating after it let go: %v %v", applied, err)
	}
	c := connect(t, d.Tick, "test")
	l, err := c.TakeLease(ctx, "nightly", Holder{Host: "host0", Job: "harvest", PID: 1}, DefaultLeaseTTL)
	if err != nil || l.Fence <= 41 {
		t.Fatalf("the first lease of nightly: %+v, %v (its fence was 41)", l, err)
	}
}

func schemaVersionOf(t *testing.T, dsn string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var v int
	if err := conn.QueryRow(context.Background(), "SELECT max(version) FROM tickgate.meta").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
