// Package fleettest gives a test package a fleet database of its own on the
// PostgreSQL that scripts/pgtest started (go test runs packages in
// parallel, so they must not share one), migrated to the current schema.
package fleettest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// DSNs of one test database. Tick is the shared tick role's, mapped to the
// hosts SharedHosts names (tests that need no isolation between hosts);
// HostDSN gives a host a login role of its own.
type DSNs struct{ Admin, Tick, Super, Ctl, CA string }

// SharedHosts are the host names the shared tick role acts for in every
// test database.
var SharedHosts = []string{"host0", "host1", "host2", "host3", "host4", "host5", "host6", "host7", "host8", "host9",
	"a", "b", "c", "d", "h", "test", "bench"}

// HostDSN creates (once) the login role tickgate_tick_HOST, a member of
// tickgate_tick with the same password, maps it to host in this database,
// and returns its DSN: a host that can act only for itself.
func (d DSNs) HostDSN(t testing.TB, host string) string {
	t.Helper()
	role := "tickgate_tick_" + strings.ReplaceAll(host, "-", "_")
	pw := password(d.Tick)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, d.Super)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	id := pgx.Identifier{role}.Sanitize()
	if _, err := conn.Exec(ctx, `DO $$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '`+role+`') THEN
			CREATE ROLE `+id+` LOGIN PASSWORD '`+strings.ReplaceAll(pw, "'", "''")+`' IN ROLE tickgate_tick;
		END IF; END $$`); err != nil {
		t.Fatalf("role %s: %v", role, err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO tickgate.hosts (role, host) VALUES ($1, $2) ON CONFLICT DO NOTHING", role, host); err != nil {
		t.Fatalf("mapping host %s: %v", host, err)
	}
	return strings.Replace(d.Tick, "//tickgate_tick:", "//"+role+":", 1)
}

// password is the password in a DSN URL.
func password(dsn string) string {
	rest := strings.SplitN(strings.TrimPrefix(dsn, "postgresql://"), "@", 2)[0]
	_, pw, _ := strings.Cut(rest, ":")
	return pw
}

// DB creates (once) the database tickgate_NAME owned by tickgate_admin,
// migrates it with migrate (fleet.Migrate; a parameter, so that package
// fleet's own tests can use this one), and returns its DSNs. Without a test
// server it skips the test, or fails it under CI.
func DB(t testing.TB, name string, migrate func(adminDSN string) error) DSNs {
	t.Helper()
	base := DSNs{os.Getenv("TICKGATE_TEST_PG_ADMIN_DSN"), os.Getenv("TICKGATE_TEST_PG_TICK_DSN"),
		os.Getenv("TICKGATE_TEST_PG_SUPER_DSN"), os.Getenv("TICKGATE_TEST_PG_CTL"), os.Getenv("TICKGATE_TEST_PG_CA")}
	if base.Admin == "" || base.Tick == "" || base.Super == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no test PostgreSQL: run the tests through scripts/pgtest run (make test does)")
		}
		t.Skip("no test PostgreSQL (scripts/pgtest run -- go test ./...)")
	}
	db := "tickgate_" + name
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base.Super)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		id := pgx.Identifier{db}.Sanitize()
		for _, sql := range []string{"CREATE DATABASE " + id + " OWNER tickgate_admin", "GRANT CONNECT ON DATABASE " + id + " TO tickgate_tick"} {
			if _, err := conn.Exec(ctx, sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
	}
	swap := func(dsn string) string { return strings.Replace(dsn, "/tickgate?", "/"+db+"?", 1) }
	d := DSNs{swap(base.Admin), swap(base.Tick), swap(base.Super), base.Ctl, base.CA}
	if err := migrate(d.Admin); err != nil {
		t.Fatal(fmt.Errorf("%s: %w", db, err))
	}
	sconn, err := pgx.Connect(ctx, d.Super)
	if err != nil {
		t.Fatal(err)
	}
	defer sconn.Close(ctx)
	var migrated bool
	if err := sconn.QueryRow(ctx, "SELECT to_regclass('tickgate.hosts') IS NOT NULL").Scan(&migrated); err != nil {
		t.Fatal(err)
	}
	for _, h := range SharedHosts {
		if !migrated {
			break // a test that migrates itself
		}
		if _, err := sconn.Exec(ctx, "INSERT INTO tickgate.hosts (role, host) VALUES ('tickgate_tick', $1) ON CONFLICT DO NOTHING", h); err != nil {
			t.Fatalf("mapping host %s: %v", h, err)
		}
	}
	return d
}
