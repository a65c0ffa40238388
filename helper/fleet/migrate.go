package fleet

import (
	"context"
	"fmt"

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

// grants are applied after every migration run: what the tick role may do.
// It may read the gate, take and release lock groups and claim singleton
// slots; it cannot change the gate, delete a lock group, lower a fencing
// token or move a slot back.
const grants = `GRANT USAGE ON SCHEMA tickgate TO %[1]s;
	GRANT SELECT ON tickgate.meta, tickgate.gate TO %[1]s;
	GRANT SELECT, INSERT ON tickgate.locks TO %[1]s;
	GRANT UPDATE (fence, host, job, pid, since) ON tickgate.locks TO %[1]s;
	GRANT SELECT, INSERT, UPDATE (record, updated_at) ON tickgate.jobs TO %[1]s;
	GRANT SELECT, INSERT, UPDATE (slot, host, claimed_at) ON tickgate.slots TO %[1]s;
	GRANT SELECT, INSERT, UPDATE (until, reason, set_by, set_at) ON tickgate.backoffs TO %[1]s;`

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
		if _, err := tx.Exec(ctx, fmt.Sprintf(grants, pgx.Identifier{tickRole}.Sanitize())); err != nil {
			return fmt.Errorf("granting %s: %w", tickRole, explain(err))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migrating the fleet schema: %w", explain(err))
	}
	return applied, nil
}
