package fleet

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrations[i] takes the schema from version i to i+1. Never edit one that
// has shipped: add the next.
var migrations = []string{
	// 1: the fleet gate, fleet lock groups with their fencing tokens.
	`CREATE TABLE tickgate.gate (
		id int PRIMARY KEY CHECK (id = 1),
		doc jsonb NOT NULL,
		updated_at timestamptz NOT NULL DEFAULT now(),
		updated_by text NOT NULL DEFAULT current_user
	);
	INSERT INTO tickgate.gate (id, doc) VALUES (1, '{}');
	CREATE TABLE tickgate.locks (
		lock_group text PRIMARY KEY,
		fence bigint NOT NULL CHECK (fence > 0),
		host text, job text, pid int, since timestamptz
	);
	CREATE FUNCTION tickgate.fence_only_grows() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF NEW.fence <= OLD.fence THEN
			RAISE EXCEPTION 'the fencing token of lock group % may only grow (% -> %)', OLD.lock_group, OLD.fence, NEW.fence;
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER fence_only_grows BEFORE UPDATE OF fence ON tickgate.locks
		FOR EACH ROW EXECUTE FUNCTION tickgate.fence_only_grows();`,
	// 2: every host's job records, for fleet status. A row belongs to the
	// login role that wrote it: with one login role per host (members of the
	// tick role) a host can change only its own rows.
	`CREATE TABLE tickgate.jobs (
		host text NOT NULL,
		job text NOT NULL,
		record jsonb NOT NULL,
		updated_at timestamptz NOT NULL DEFAULT now(),
		owner name NOT NULL DEFAULT current_user,
		PRIMARY KEY (host, job)
	);
	ALTER TABLE tickgate.jobs ENABLE ROW LEVEL SECURITY;
	CREATE POLICY read_all ON tickgate.jobs FOR SELECT USING (true);
	CREATE POLICY write_own ON tickgate.jobs FOR INSERT WITH CHECK (owner = current_user);
	CREATE POLICY change_own ON tickgate.jobs FOR UPDATE USING (owner = current_user) WITH CHECK (owner = current_user);`,
	// 3: floating singletons. One row per job: the latest slot claimed, and
	// by whom. A slot is named by the elapse that ends it (the schedule's
	// next elapse when its tick started), the same on every host whatever
	// its clock skew or random delay; the claim only ever moves forward.
	`CREATE TABLE tickgate.slots (
		job text PRIMARY KEY,
		slot timestamptz NOT NULL,
		host text NOT NULL,
		claimed_at timestamptz NOT NULL DEFAULT now()
	);
	CREATE FUNCTION tickgate.slot_only_grows() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF NEW.slot <= OLD.slot THEN
			RAISE EXCEPTION 'the slot of floating singleton % may only move forward (% -> %)', OLD.job, OLD.slot, NEW.slot;
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER slot_only_grows BEFORE UPDATE OF slot ON tickgate.slots
		FOR EACH ROW EXECUTE FUNCTION tickgate.slot_only_grows();`,
	// 4: fleet-wide back-offs of fleet lock groups (tickgate backoff). A
	// back-off only ever extends; only the admin role clears one.
	`CREATE TABLE tickgate.backoffs (
		lock_group text PRIMARY KEY,
		until timestamptz NOT NULL,
		reason text NOT NULL,
		set_by text NOT NULL,
		set_at timestamptz NOT NULL DEFAULT now()
	);
	CREATE FUNCTION tickgate.backoff_only_extends() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF NEW.until <= OLD.until THEN
			RAISE EXCEPTION 'the back-off of lock group % may only be extended (% -> %)', OLD.lock_group, OLD.until, NEW.until;
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER backoff_only_extends BEFORE UPDATE OF until ON tickgate.backoffs
		FOR EACH ROW EXECUTE FUNCTION tickgate.backoff_only_extends();`,
}

// tickGrants are what the tick role may do, granted after every migration
// run (grantSQL) and checked by Pending from the same list. It may read the
// gate, take and release lock groups, publish its jobs' records, claim
// singleton slots and extend back-offs; it cannot change the gate, delete a
// lock group, lower a fencing token or move a slot back.
var tickGrants = []struct {
	table  string
	privs  []string // on the table
	update []string // UPDATE on these columns only
}{
	{"meta", []string{"SELECT"}, nil},
	{"gate", []string{"SELECT"}, nil},
	{"locks", []string{"SELECT", "INSERT"}, []string{"fence", "host", "job", "pid", "since"}},
	{"jobs", []string{"SELECT", "INSERT"}, []string{"record", "updated_at"}},
	{"slots", []string{"SELECT", "INSERT"}, []string{"slot", "host", "claimed_at"}},
	{"backoffs", []string{"SELECT", "INSERT"}, []string{"until", "reason", "set_by", "set_at"}},
}

// grantSQL grants role (a sanitised identifier) everything in tickGrants.
func grantSQL(role string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "GRANT USAGE ON SCHEMA tickgate TO %s;\n", role)
	for _, g := range tickGrants {
		privs := strings.Join(g.privs, ", ")
		if len(g.update) > 0 {
			privs += ", UPDATE (" + strings.Join(g.update, ", ") + ")"
		}
		fmt.Fprintf(&b, "GRANT %s ON tickgate.%s TO %s;\n", privs, g.table, role)
	}
	return b.String()
}

// grantedSQL is one boolean: whether the role in $1 holds everything in
// tickGrants.
func grantedSQL() string {
	checks := []string{"has_schema_privilege($1, 'tickgate', 'USAGE')"}
	for _, g := range tickGrants {
		for _, p := range g.privs {
			checks = append(checks, fmt.Sprintf("has_table_privilege($1, 'tickgate.%s', '%s')", g.table, p))
		}
		for _, col := range g.update {
			checks = append(checks, fmt.Sprintf("has_column_privilege($1, 'tickgate.%s', '%s', 'UPDATE')", g.table, col))
		}
	}
	return "SELECT " + strings.Join(checks, "\n\tAND ")
}

// migrateLock serialises concurrent deploys' migrations.
const migrateLock = 0x7469636b67617465 // "tickgate"

// Migrate brings the schema to SchemaVersion with the admin role (the owner
// of the database), idempotently, and grants tickRole what ticks need. It
// returns the versions it applied (none when up to date). A schema newer
// than this helper is refused.
func Migrate(ctx context.Context, o Options, tickRole string) ([]int, error) {
	c, err := dial(ctx, o)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var applied []int
	// Migrations can take longer than one query's bound.
	ctx, cancel := context.WithTimeout(ctx, 10*c.timeout)
	defer cancel()
	err = pgx.BeginFunc(ctx, c.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrateLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS tickgate;
			CREATE TABLE IF NOT EXISTS tickgate.meta (version int NOT NULL);`); err != nil {
			return err
		}
		var v int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM tickgate.meta").Scan(&v); err != nil {
			return err
		}
		if v > SchemaVersion {
			return fmt.Errorf("the fleet schema is version %d, newer than this helper understands (%d): deploy a newer tickgate", v, SchemaVersion)
		}
		for ; v < SchemaVersion; v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, explain(err))
			}
			applied = append(applied, v+1)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM tickgate.meta; INSERT INTO tickgate.meta (version) VALUES ("+fmt.Sprint(SchemaVersion)+")"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, grantSQL(pgx.Identifier{tickRole}.Sanitize())); err != nil {
			return fmt.Errorf("granting %s: %w", tickRole, explain(err))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migrating the fleet schema: %w", explain(err))
	}
	return applied, nil
}

// Pending says what Migrate would still do, without changing anything: the
// schema version to reach, or the grants tickRole lacks (each a sentence;
// none when the schema is current and the role holds every grant). A schema
// newer than this helper, or a role that does not exist, is an error.
func Pending(ctx context.Context, o Options, tickRole string) ([]string, error) {
	c, err := dial(ctx, o)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	qctx, cancel := c.query(ctx)
	defer cancel()
	v, present, err := c.schemaVersion(qctx)
	switch {
	case err != nil:
		return nil, err
	case !present:
		return []string{fmt.Sprintf("the fleet database has no tickgate schema yet (this helper's is version %d)", SchemaVersion)}, nil
	case v > SchemaVersion:
		return nil, fmt.Errorf("the fleet schema is version %d, newer than this helper understands (%d): deploy a newer tickgate", v, SchemaVersion)
	case v < SchemaVersion:
		return []string{fmt.Sprintf("the fleet schema is version %d, this helper's is %d", v, SchemaVersion)}, nil
	}
	var granted bool
	if err := c.conn.QueryRow(qctx, grantedSQL(), tickRole).Scan(&granted); err != nil {
		return nil, fmt.Errorf("reading the grants of role %s: %w", tickRole, explain(err))
	}
	if !granted {
		return []string{fmt.Sprintf("role %s lacks some of the tick role's grants", tickRole)}, nil
	}
	return nil, nil
}
