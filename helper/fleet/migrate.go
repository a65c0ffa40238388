package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
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
	// 5: leases on the database clock instead of session advisory locks
	// (which a server restart, a killed backend, an idle timeout or a
	// transaction pooler lost or shared); fences with the timeline in their
	// high bits; hosts mapped to the login roles that may act for them; and
	// every change of a lock, a slot or a back-off by a tick through a
	// function that checks the caller (docs/fleet.md).
	`CREATE TABLE tickgate.hosts (
		role name NOT NULL,
		host text NOT NULL CHECK (host ~ '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,252}$'),
		PRIMARY KEY (role, host)
	);
	CREATE TABLE tickgate.singletons (
		job text PRIMARY KEY,
		schedule text NOT NULL,
		interval_seconds double precision NOT NULL CHECK (interval_seconds > 0)
	);
	ALTER TABLE tickgate.locks ADD COLUMN token text, ADD COLUMN lease_until timestamptz;
	-- A take asked again by its holder (its answer lost with its
	-- connection) keeps its fence: equal is allowed for the same token.
	CREATE OR REPLACE FUNCTION tickgate.fence_only_grows() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF NEW.fence < OLD.fence OR (NEW.fence = OLD.fence AND NEW.token IS DISTINCT FROM OLD.token) THEN
			RAISE EXCEPTION 'the fencing token of lock group % may only grow (% -> %)', OLD.lock_group, OLD.fence, NEW.fence;
		END IF;
		RETURN NEW;
	END $$;
	ALTER TABLE tickgate.slots ADD COLUMN schedule text, ADD COLUMN claim_token text;

	CREATE FUNCTION tickgate.caller_is(p_host text) RETURNS boolean
		LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
		SELECT EXISTS (SELECT 1 FROM tickgate.hosts WHERE role = session_user AND host = p_host)
	$$;

	CREATE FUNCTION tickgate.check_caller(p_host text) RETURNS void
		LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	BEGIN
		IF NOT tickgate.caller_is(p_host) THEN
			RAISE EXCEPTION 'role % may not act for host % (tickgate.hosts: the deploy maps each host to its login role)', session_user, p_host
				USING ERRCODE = '42501';
		END IF;
	END $$;

	-- The fence's epoch: the server's timeline, so that a promoted standby
	-- hands out fences above any its old primary gave.
	CREATE FUNCTION tickgate.epoch() RETURNS bigint
		LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
		SELECT ('x' || lpad(substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8), 16, '0'))::bit(64)::bigint
	$$;

	CREATE FUNCTION tickgate.take_lease(p_group text, p_host text, p_job text, p_pid int, p_token text, p_ttl_ms int)
		RETURNS TABLE (taken boolean, fence bigint, lease_until timestamptz, holder_host text, holder_job text, db_now timestamptz)
		LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	#variable_conflict use_column
	DECLARE
		v_now timestamptz := clock_timestamp();
		v_floor bigint := (tickgate.epoch() << 32) + 1;
		v_fence bigint;
		v_until timestamptz;
	BEGIN
		PERFORM tickgate.check_caller(p_host);
		IF p_ttl_ms IS NULL OR p_ttl_ms < 1000 OR p_ttl_ms > 3600000 THEN
			RAISE EXCEPTION 'a lease lasts 1 s to 1 h, not % ms', p_ttl_ms USING ERRCODE = '22023';
		END IF;
		IF p_token !~ '^[0-9a-f]{32}$' OR p_group !~ '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,199}$' OR p_job !~ '^[a-z0-9][a-z0-9_.-]{0,199}$' THEN
			RAISE EXCEPTION 'not a lock group, job or token tickgate makes' USING ERRCODE = '22023';
		END IF;
		-- A fence must survive a crash: this commit waits for the WAL (and
		-- a synchronous standby), whatever the role's default.
		PERFORM set_config('synchronous_commit', 'on', true);
		INSERT INTO tickgate.locks AS l (lock_group, fence, host, job, pid, since, token, lease_until)
			VALUES (p_group, v_floor, p_host, p_job, p_pid, v_now, p_token, v_now + p_ttl_ms * interval '1 millisecond')
			ON CONFLICT (lock_group) DO UPDATE SET
				fence = CASE WHEN l.token = EXCLUDED.token THEN l.fence ELSE greatest(l.fence + 1, v_floor) END,
				host = EXCLUDED.host, job = EXCLUDED.job, pid = EXCLUDED.pid, since = EXCLUDED.since,
				token = EXCLUDED.token, lease_until = EXCLUDED.lease_until
			-- Free (released or ended), or this holder's already: a take
			-- whose answer was lost with its connection, asked again.
			WHERE l.lease_until IS NULL OR l.lease_until < v_now OR l.token = EXCLUDED.token
			RETURNING l.fence, l.lease_until INTO v_fence, v_until;
		IF FOUND THEN
			RETURN QUERY SELECT true, v_fence, v_until, p_host, p_job, v_now;
		ELSE
			RETURN QUERY SELECT false, l.fence, l.lease_until, l.host, l.job, v_now FROM tickgate.locks l WHERE l.lock_group = p_group;
		END IF;
	END $$;

	CREATE FUNCTION tickgate.renew_lease(p_group text, p_host text, p_token text, p_fence bigint, p_ttl_ms int)
		RETURNS TABLE (renewed boolean, lease_until timestamptz, db_now timestamptz)
		LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	#variable_conflict use_column
	DECLARE
		v_now timestamptz := clock_timestamp();
		v_until timestamptz;
	BEGIN
		PERFORM tickgate.check_caller(p_host);
		IF p_ttl_ms IS NULL OR p_ttl_ms < 1000 OR p_ttl_ms > 3600000 THEN
			RAISE EXCEPTION 'a lease lasts 1 s to 1 h, not % ms', p_ttl_ms USING ERRCODE = '22023';
		END IF;
		PERFORM set_config('synchronous_commit', 'on', true);
		UPDATE tickgate.locks l SET lease_until = v_now + p_ttl_ms * interval '1 millisecond'
			WHERE l.lock_group = p_group AND l.host = p_host AND l.token = p_token AND l.fence = p_fence AND l.lease_until >= v_now
			RETURNING l.lease_until INTO v_until;
		RETURN QUERY SELECT FOUND, v_until, v_now;
	END $$;

	CREATE FUNCTION tickgate.release_lease(p_group text, p_host text, p_token text, p_fence bigint) RETURNS boolean
		LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	#variable_conflict use_column
	BEGIN
		PERFORM tickgate.check_caller(p_host);
		UPDATE tickgate.locks SET host = NULL, job = NULL, pid = NULL, since = NULL, token = NULL, lease_until = NULL
			WHERE lock_group = p_group AND host = p_host AND token = p_token AND fence = p_fence;
		RETURN FOUND;
	END $$;

	-- A floating singleton's slot: only by the schedule the deploy
	-- registered for the job, never far ahead of the database's clock, and
	-- only forward.
	CREATE FUNCTION tickgate.claim_slot(p_job text, p_slot timestamptz, p_host text, p_schedule text, p_token text)
		RETURNS TABLE (status text, slot timestamptz, host text, claimed_at timestamptz, schedule text)
		LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	#variable_conflict use_column
	DECLARE
		v_now timestamptz := clock_timestamp();
		r tickgate.singletons%ROWTYPE;
		v_slot timestamptz;
		v_host text;
		v_at timestamptz;
	BEGIN
		PERFORM tickgate.check_caller(p_host);
		SELECT * INTO r FROM tickgate.singletons WHERE job = p_job;
		IF NOT FOUND THEN
			RETURN QUERY SELECT 'unregistered'::text, NULL::timestamptz, NULL::text, NULL::timestamptz, NULL::text;
			RETURN;
		END IF;
		IF r.schedule IS DISTINCT FROM p_schedule THEN
			RETURN QUERY SELECT 'schedule-mismatch'::text, NULL::timestamptz, NULL::text, NULL::timestamptz, r.schedule;
			RETURN;
		END IF;
		IF p_slot > v_now + (r.interval_seconds + 120) * interval '1 second' THEN
			RETURN QUERY SELECT 'too-far-ahead'::text, p_slot, NULL::text, v_now, r.schedule;
			RETURN;
		END IF;
		PERFORM set_config('synchronous_commit', 'on', true);
		INSERT INTO tickgate.slots AS s (job, slot, host, schedule, claimed_at, claim_token) VALUES (p_job, p_slot, p_host, p_schedule, v_now, p_token)
			ON CONFLICT (job) DO UPDATE SET slot = EXCLUDED.slot, host = EXCLUDED.host, schedule = EXCLUDED.schedule,
				claimed_at = EXCLUDED.claimed_at, claim_token = EXCLUDED.claim_token
			WHERE s.slot < EXCLUDED.slot
			RETURNING s.slot, s.host, s.claimed_at INTO v_slot, v_host, v_at;
		IF FOUND THEN
			RETURN QUERY SELECT 'claimed'::text, v_slot, v_host, v_at, p_schedule;
		ELSE
			-- This very claim (its token), asked again after its answer was
			-- lost with its connection, is this claimant's still.
			RETURN QUERY SELECT CASE WHEN s.claim_token = p_token AND s.slot = p_slot THEN 'claimed' ELSE 'taken' END,
				s.slot, s.host, s.claimed_at, s.schedule FROM tickgate.slots s WHERE s.job = p_job;
		END IF;
	END $$;

	-- A job's back-off of its fleet lock group, while its host holds the
	-- group's lease: bounded by the database's clock (at most 7 days), with
	-- a reason that is printable text.
	CREATE FUNCTION tickgate.extend_backoff(p_lock text, p_until timestamptz, p_reason text, p_host text, p_job text, p_run text)
		RETURNS TABLE (lock_group text, until timestamptz, reason text, set_by text, set_at timestamptz)
		LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	#variable_conflict use_column
	DECLARE
		v_now timestamptz := clock_timestamp();
	BEGIN
		PERFORM tickgate.check_caller(p_host);
		IF p_until <= v_now OR p_until > v_now + interval '7 days' THEN
			RAISE EXCEPTION 'a back-off ends in the future, at most 7 days ahead of the database''s clock (%): not %', v_now, p_until USING ERRCODE = '22023';
		END IF;
		IF p_reason IS NULL OR btrim(p_reason) = '' OR length(p_reason) > 300 OR p_reason ~ '[[:cntrl:]\u0080-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]' THEN
			RAISE EXCEPTION 'a back-off''s reason is printable text of at most 300 characters' USING ERRCODE = '22023';
		END IF;
		IF p_job !~ '^[a-z0-9][a-z0-9_.-]{0,199}$' OR p_run !~ '^[0-9a-f]{1,32}$' THEN
			RAISE EXCEPTION 'not a job or run tickgate names' USING ERRCODE = '22023';
		END IF;
		-- Only a job of the group, while its host holds the group's lease.
		IF NOT EXISTS (SELECT 1 FROM tickgate.locks l WHERE l.lock_group = p_lock AND l.host = p_host AND l.job = p_job AND l.lease_until > v_now) THEN
			RAISE EXCEPTION 'job % on host % does not hold fleet lock group %: only its holder backs it off', p_job, p_host, p_lock USING ERRCODE = '42501';
		END IF;
		PERFORM set_config('synchronous_commit', 'on', true);
		INSERT INTO tickgate.backoffs AS b (lock_group, until, reason, set_by, set_at)
			VALUES (p_lock, p_until, p_reason, format('job %s (run %s) on %s', p_job, p_run, p_host), v_now)
			ON CONFLICT (lock_group) DO UPDATE SET until = EXCLUDED.until, reason = EXCLUDED.reason, set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at
			WHERE b.until < EXCLUDED.until;
		RETURN QUERY SELECT b.lock_group, b.until, b.reason, b.set_by, b.set_at FROM tickgate.backoffs b WHERE b.lock_group = p_lock;
	END $$;

	-- A host's records: only a role mapped to that host writes them.
	DROP POLICY write_own ON tickgate.jobs;
	DROP POLICY change_own ON tickgate.jobs;
	CREATE POLICY write_mapped ON tickgate.jobs FOR INSERT WITH CHECK (tickgate.caller_is(host));
	CREATE POLICY change_mapped ON tickgate.jobs FOR UPDATE USING (tickgate.caller_is(host)) WITH CHECK (tickgate.caller_is(host));

	REVOKE EXECUTE ON FUNCTION tickgate.caller_is(text), tickgate.check_caller(text), tickgate.epoch(),
		tickgate.take_lease(text, text, text, int, text, int), tickgate.renew_lease(text, text, text, bigint, int),
		tickgate.release_lease(text, text, text, bigint), tickgate.claim_slot(text, timestamptz, text, text, text),
		tickgate.extend_backoff(text, timestamptz, text, text, text, text) FROM PUBLIC;`,

	// 6: fleet starts (tickgate start --fleet): an operator's request to run
	// a floating singleton once, taken by exactly one host whose timer is
	// armed (its tickgate-fleet-starts.timer asks), which reports how the
	// run went. Requests not taken within 10 minutes lapse.
	`CREATE TABLE tickgate.starts (
		id bigserial PRIMARY KEY,
		job text NOT NULL,
		force boolean NOT NULL DEFAULT false,
		requested_by text NOT NULL,
		requested_at timestamptz NOT NULL DEFAULT clock_timestamp(),
		taken_by text,
		taken_at timestamptz,
		invocation text,
		finished_at timestamptz,
		result text,
		exit_code int,
		reason text,
		duration_seconds double precision
	);
	CREATE INDEX starts_open ON tickgate.starts (job, id) WHERE taken_by IS NULL;

	CREATE FUNCTION tickgate.request_start(p_host text, p_job text, p_force boolean) RETURNS bigint
		LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	DECLARE
		v_id bigint;
	BEGIN
		PERFORM tickgate.check_caller(p_host);
		IF NOT EXISTS (SELECT 1 FROM tickgate.singletons WHERE job = p_job) THEN
			RAISE EXCEPTION 'job % is not a floating singleton of the fleet (singleton: fleet, registered by the deploy)', p_job USING ERRCODE = '22023';
		END IF;
		-- One waiting request per job: asking again while one waits is that one.
		SELECT s.id INTO v_id FROM tickgate.starts s WHERE s.job = p_job AND s.taken_by IS NULL
			AND s.requested_at > clock_timestamp() - interval '10 minutes' ORDER BY s.id LIMIT 1;
		IF FOUND THEN
			RETURN v_id;
		END IF;
		PERFORM set_config('synchronous_commit', 'on', true);
		INSERT INTO tickgate.starts (job, force, requested_by) VALUES (p_job, p_force, p_host) RETURNING id INTO v_id;
		RETURN v_id;
	END $$;

	-- The oldest waiting request of the job, to one host: SKIP LOCKED makes
	-- two hosts asking at once get it once.
	CREATE FUNCTION tickgate.take_start(p_host text, p_job text) RETURNS TABLE (id bigint, force boolean)
		LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	#variable_conflict use_column
	BEGIN
		PERFORM tickgate.check_caller(p_host);
		PERFORM set_config('synchronous_commit', 'on', true);
		RETURN QUERY UPDATE tickgate.starts s SET taken_by = p_host, taken_at = clock_timestamp()
			WHERE s.id = (SELECT w.id FROM tickgate.starts w WHERE w.job = p_job AND w.taken_by IS NULL
				AND w.requested_at > clock_timestamp() - interval '10 minutes' ORDER BY w.id LIMIT 1 FOR UPDATE SKIP LOCKED)
			RETURNING s.id, s.force;
	END $$;

	-- How the run went, from the host that took it, once.
	CREATE FUNCTION tickgate.finish_start(p_host text, p_id bigint, p_invocation text, p_result text, p_exit int, p_reason text, p_duration double precision)
		RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	BEGIN
		PERFORM tickgate.check_caller(p_host);
		UPDATE tickgate.starts SET invocation = left(p_invocation, 64), finished_at = clock_timestamp(), result = left(p_result, 32),
			exit_code = p_exit, reason = left(p_reason, 1000), duration_seconds = p_duration
			WHERE id = p_id AND taken_by = p_host AND finished_at IS NULL;
		RETURN FOUND;
	END $$;

	REVOKE EXECUTE ON FUNCTION tickgate.request_start(text, text, boolean), tickgate.take_start(text, text),
		tickgate.finish_start(text, bigint, text, text, int, text, double precision) FROM PUBLIC;`,
}

func init() {
	migrations = append(migrations, slotsMigration(), blackoutsMigration)
}

// blackoutsMigration is 8: the fleet's recurring blackout windows
// (tickgate_blackouts, registered by the deploy): every fleet tick obeys
// the ones that cover its job, whatever its host's own list says.
const blackoutsMigration = `CREATE TABLE tickgate.blackouts (
		name text PRIMARY KEY CHECK (name ~ '^[a-z0-9_-]{1,64}$'),
		doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object' AND doc->>'name' = name)
	);`

// slotsMigration is 7: fleet lock groups of N. Slot i>0 of group G is the
// lease row "G#i" (slot 0 is G itself, as a group of one always was): the
// lease functions of 5 accept such a name, and a back-off of G may be set
// by the holder of any of its slots. The functions are those of 5 with just
// that changed, taken from its text (a shipped migration never changes).
func slotsMigration() string {
	v5 := migrations[4]
	fn := func(name string) string {
		i := strings.Index(v5, "CREATE FUNCTION tickgate."+name+"(")
		j := strings.Index(v5[i:], "END $$;")
		if i < 0 || j < 0 {
			panic("fleet: migration 5 lacks " + name)
		}
		return "CREATE OR REPLACE FUNCTION" + strings.TrimPrefix(v5[i:i+j+len("END $$;")], "CREATE FUNCTION")
	}
	replace := func(text, old, new string) string {
		if !strings.Contains(text, old) {
			panic("fleet: migration 5 lacks " + old)
		}
		return strings.Replace(text, old, new, 1)
	}
	take := replace(fn("take_lease"), `p_group !~ '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,199}$'`,
		`p_group !~ '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,199}(#[1-9][0-9]?)?$'`)
	backoff := replace(fn("extend_backoff"), `WHERE l.lock_group = p_lock AND l.host = p_host`,
		`WHERE split_part(l.lock_group, '#', 1) = p_lock AND l.host = p_host`)
	return "-- 7: fleet lock groups of N slots (G, G#1, G#2, ...).\n" + take + "\n\n" + backoff + "\n"
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
	{"locks", []string{"SELECT"}, nil},
	{"jobs", []string{"SELECT", "INSERT"}, []string{"record", "updated_at"}},
	{"slots", []string{"SELECT"}, nil},
	{"backoffs", []string{"SELECT"}, nil},
	{"hosts", []string{"SELECT"}, nil},
	{"singletons", []string{"SELECT"}, nil},
	{"starts", []string{"SELECT"}, nil},
	{"blackouts", []string{"SELECT"}, nil},
}

// tickFunctions are the functions the tick role may call: every change of a
// lock, a slot or a back-off goes through one of them, which checks that the
// caller's login role is mapped to the host it acts for.
var tickFunctions = []string{
	"caller_is(text)",
	"take_lease(text, text, text, int, text, int)",
	"renew_lease(text, text, text, bigint, int)",
	"release_lease(text, text, text, bigint)",
	"claim_slot(text, timestamptz, text, text, text)",
	"extend_backoff(text, timestamptz, text, text, text, text)",
	"request_start(text, text, boolean)",
	"take_start(text, text)",
	"finish_start(text, bigint, text, text, int, text, double precision)",
}

// tickRevokes are what releases before 5 granted the tick role and it must
// no longer hold: it changed locks, slots and back-offs directly.
const tickRevokes = "REVOKE INSERT, UPDATE ON tickgate.locks, tickgate.slots, tickgate.backoffs FROM %s;\n"

// grantSQL grants role (a sanitised identifier) everything in tickGrants
// and tickFunctions, and revokes tickRevokes.
func grantSQL(role string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "GRANT USAGE ON SCHEMA tickgate TO %s;\n", role)
	fmt.Fprintf(&b, tickRevokes, role)
	for _, f := range tickFunctions {
		fmt.Fprintf(&b, "GRANT EXECUTE ON FUNCTION tickgate.%s TO %s;\n", f, role)
	}
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
	for _, f := range tickFunctions {
		checks = append(checks, fmt.Sprintf("has_function_privilege($1, 'tickgate.%s', 'EXECUTE')", f))
	}
	for _, t := range []string{"locks", "slots", "backoffs"} {
		checks = append(checks, fmt.Sprintf("NOT has_table_privilege($1, 'tickgate.%s', 'INSERT')", t),
			fmt.Sprintf("NOT has_any_column_privilege($1, 'tickgate.%s', 'UPDATE')", t))
	}
	return "SELECT " + strings.Join(checks, "\n\tAND ")
}

// migrateLock serialises concurrent deploys' migrations.
const migrateLock = 0x7469636b67617465 // "tickgate"

// Registration is what the deploy tells the fleet database about the hosts
// of its play: the login role each host's ticks connect as (only that role
// may act for the host), and each floating singleton's schedule (the hash of
// its OnCalendar= lines) and interval in seconds (a claim must be by that
// schedule, within one interval of the database's clock).
type Registration struct {
	Hosts      map[string]string    // host -> login role
	Singletons map[string]Singleton // job -> its schedule
	// Blackouts, when not nil, are the fleet's blackout windows (each a
	// JSON object with its "name", as package blackout reads it): they
	// replace the registered ones.
	Blackouts []json.RawMessage
}

// blackoutDocs are the windows sorted by name, as one JSON list (what the
// table holds, aggregated in name order).
func blackoutDocs(ws []json.RawMessage) (string, map[string]json.RawMessage, error) {
	byName := map[string]json.RawMessage{}
	for _, w := range ws {
		var head struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(w, &head); err != nil || head.Name == "" {
			return "", nil, fmt.Errorf("a blackout window without a name: %s", w)
		}
		if _, dup := byName[head.Name]; dup {
			return "", nil, fmt.Errorf("blackout window %s given twice", head.Name)
		}
		byName[head.Name] = w
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = string(byName[n])
	}
	return "[" + strings.Join(parts, ",") + "]", byName, nil
}

// Singleton is a floating singleton's registered schedule.
type Singleton struct {
	Schedule string  // hash of its OnCalendar= lines (ScheduleHash)
	Interval float64 // the longest gap between two elapses, seconds
}

// registerSQL applies reg in tx (the admin role's): a host mapped to another
// role than reg says is mapped anew; the rows of hosts and jobs reg does not
// name stay (another inventory may share the database).
func registerSQL(ctx context.Context, tx pgx.Tx, reg Registration) error {
	for host, role := range reg.Hosts {
		if _, err := tx.Exec(ctx, "DELETE FROM tickgate.hosts WHERE host = $1 AND role <> $2", host, role); err != nil {
			return fmt.Errorf("registering host %s: %w", host, explain(err))
		}
		if _, err := tx.Exec(ctx, "INSERT INTO tickgate.hosts (role, host) VALUES ($1, $2) ON CONFLICT DO NOTHING", role, host); err != nil {
			return fmt.Errorf("registering host %s as role %s: %w", host, role, explain(err))
		}
	}
	if reg.Blackouts != nil {
		_, byName, err := blackoutDocs(reg.Blackouts)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM tickgate.blackouts"); err != nil {
			return fmt.Errorf("registering the blackout windows: %w", explain(err))
		}
		for name, doc := range byName {
			if _, err := tx.Exec(ctx, "INSERT INTO tickgate.blackouts (name, doc) VALUES ($1, $2::jsonb)", name, string(doc)); err != nil {
				return fmt.Errorf("registering blackout window %s: %w", name, explain(err))
			}
		}
	}
	for job, sg := range reg.Singletons {
		if _, err := tx.Exec(ctx, `INSERT INTO tickgate.singletons (job, schedule, interval_seconds) VALUES ($1, $2, $3)
			ON CONFLICT (job) DO UPDATE SET schedule = EXCLUDED.schedule, interval_seconds = EXCLUDED.interval_seconds`,
			job, sg.Schedule, sg.Interval); err != nil {
			return fmt.Errorf("registering floating singleton %s: %w", job, explain(err))
		}
	}
	return nil
}

// Migrate brings the schema to SchemaVersion with the admin role (the owner
// of the database), idempotently, grants tickRole what ticks need, and
// applies reg. It returns the versions it applied (none when up to date). A
// schema newer than this helper is refused.
func Migrate(ctx context.Context, o Options, tickRole string, reg Registration) ([]int, error) {
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
		// A statement bound as long as the migration's, for this transaction.
		if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", (10*c.timeout).Milliseconds())); err != nil {
			return err
		}
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
			if v == 4 {
				if err := advisoryHolders(ctx, tx); err != nil {
					return err
				}
			}
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
		return registerSQL(ctx, tx, reg)
	})
	if err != nil {
		return nil, fmt.Errorf("migrating the fleet schema: %w", explain(err))
	}
	return applied, nil
}

// Pending says what Migrate would still do, without changing anything: the
// schema version to reach, the grants tickRole lacks, the registrations of
// reg the database does not have (each a sentence; none when nothing is
// left to do). A schema newer than this helper, or a role that does not
// exist, is an error.
func Pending(ctx context.Context, o Options, tickRole string, reg Registration) (_ []string, err error) {
	c, err := dial(ctx, o)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	qctx, done, err := c.query(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { done(err) }()
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
	var pending []string
	if !granted {
		pending = append(pending, fmt.Sprintf("role %s lacks some of the tick role's grants (or holds some it must not)", tickRole))
	}
	for host, role := range reg.Hosts {
		var ok bool
		if err := c.conn.QueryRow(qctx, "SELECT EXISTS (SELECT 1 FROM tickgate.hosts WHERE host = $1 AND role = $2) AND NOT EXISTS (SELECT 1 FROM tickgate.hosts WHERE host = $1 AND role <> $2)",
			host, role).Scan(&ok); err != nil {
			return nil, fmt.Errorf("reading the registration of host %s: %w", host, explain(err))
		}
		if !ok {
			pending = append(pending, fmt.Sprintf("host %s is not registered as role %s", host, role))
		}
	}
	for job, sg := range reg.Singletons {
		var ok bool
		if err := c.conn.QueryRow(qctx, "SELECT EXISTS (SELECT 1 FROM tickgate.singletons WHERE job = $1 AND schedule = $2 AND interval_seconds = $3)",
			job, sg.Schedule, sg.Interval).Scan(&ok); err != nil {
			return nil, fmt.Errorf("reading the registration of floating singleton %s: %w", job, explain(err))
		}
		if !ok {
			pending = append(pending, fmt.Sprintf("floating singleton %s is not registered with this schedule", job))
		}
	}
	if reg.Blackouts != nil {
		want, _, err := blackoutDocs(reg.Blackouts)
		if err != nil {
			return nil, err
		}
		var same bool
		if err := c.conn.QueryRow(qctx, "SELECT coalesce((SELECT jsonb_agg(doc ORDER BY name) FROM tickgate.blackouts), '[]'::jsonb) = $1::jsonb", want).Scan(&same); err != nil {
			return nil, fmt.Errorf("reading the blackout windows: %w", explain(err))
		}
		if !same {
			pending = append(pending, "the fleet's blackout windows are not the play's")
		}
	}
	return pending, nil
}

// advisoryHolders refuses the move to leases (schema 5) while a helper of
// an older release holds a fleet lock group as a session advisory lock
// (schema 4): a new helper, which knows only leases, could take the same
// group at once. Such a helper fails closed at its next tick once the schema
// is newer than it, but one already running holds on until its job ends.
func advisoryHolders(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, "SELECT lock_group, coalesce(host, ''), coalesce(job, '') FROM tickgate.locks")
	if err != nil {
		return err
	}
	type held struct{ group, host, job string }
	byKey := map[int64]held{}
	for rows.Next() {
		var h held
		if err := rows.Scan(&h.group, &h.host, &h.job); err != nil {
			return err
		}
		sum := sha256.Sum256([]byte("tickgate-lock:" + h.group)) // schema 4's advisory key
		byKey[int64(binary.BigEndian.Uint64(sum[:8]))] = h
	}
	if err := rows.Err(); err != nil {
		return err
	}
	keys, err := tx.Query(ctx, "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1")
	if err != nil {
		return err
	}
	defer keys.Close()
	var busy []string
	for keys.Next() {
		var k int64
		if err := keys.Scan(&k); err != nil {
			return err
		}
		if h, ok := byKey[k]; ok {
			busy = append(busy, fmt.Sprintf("%s (job %s on host %s)", h.group, h.job, h.host))
		}
	}
	if err := keys.Err(); err != nil {
		return err
	}
	if len(busy) > 0 {
		sort.Strings(busy)
		return fmt.Errorf("fleet lock groups are held by helpers of an older release (session locks): %s; this release holds them by leases, "+
			"which those helpers do not see: deploy those hosts in this play (their drain waits for the jobs), or wait until the jobs end, then deploy again",
			strings.Join(busy, ", "))
	}
	return nil
}
