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

// DSNs of one test database.
type DSNs struct{ Admin, Tick, Super, Ctl string }

// DB creates (once) the database tickgate_NAME owned by tickgate_admin,
// migrates it with migrate (fleet.Migrate; a parameter, so that package
// fleet's own tests can use this one), and returns its DSNs. Without a test
// server it skips the test, or fails it under CI.
func DB(t testing.TB, name string, migrate func(adminDSN string) error) DSNs {
	t.Helper()
	base := DSNs{os.Getenv("TICKGATE_TEST_PG_ADMIN_DSN"), os.Getenv("TICKGATE_TEST_PG_TICK_DSN"),
		os.Getenv("TICKGATE_TEST_PG_SUPER_DSN"), os.Getenv("TICKGATE_TEST_PG_CTL")}
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
	d := DSNs{swap(base.Admin), swap(base.Tick), swap(base.Super), base.Ctl}
	if err := migrate(d.Admin); err != nil {
		t.Fatal(fmt.Errorf("%s: %w", db, err))
	}
	return d
}
