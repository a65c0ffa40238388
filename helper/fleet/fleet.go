// Package fleet coordinates tickgate across hosts through PostgreSQL (13 or
// newer): one fleet gate, fleet lock groups held as leases on the
// database's clock with a fencing token that only grows, floating
// singletons' slots, back-offs and every host's job records. No consensus of
// our own: the database is the one place.
//
// Nothing a tick relies on lives in a session: a lease is a row with its
// holder, fence and an end (lease_until) the server computes, renewed while
// the job runs, so a server restart, a killed backend, an idle timeout, a
// transaction pooler or a failover that keeps committed rows loses nothing.
// Every call is bounded (Options.Timeout, default 3 s, for connecting and
// for each query); a broken connection is replaced at the next call.
package fleet

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sys/unix"

	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/gate"
	"github.com/tickgate/tickgate/helper/safefs"
)

// SchemaVersion is the newest schema this helper understands.
const SchemaVersion = 8

// DefaultTimeout bounds connecting and each query.
const DefaultTimeout = 3 * time.Second

// DefaultMaxSkew is how far a host's clock may be from the database's.
const DefaultMaxSkew = 5 * time.Second

// ErrBusy means another holder has the fleet lock group.
var ErrBusy = errors.New("fleet lock busy")

// Options say how to reach the fleet database.
type Options struct {
	DSN     string        // libpq URL or key=value; TLS through its own parameters (sslmode, sslrootcert)
	Timeout time.Duration // connecting and each query (0: DefaultTimeout)
	AppName string        // application_name, e.g. "tickgate host1 harvest"
	// Insecure allows a DSN whose sslmode is below verify-full (no TLS, or
	// TLS without checking the server's name and certificate).
	Insecure bool
	// MaxSkew, when > 0, fails a connection whose host clock is further than
	// this from the database's (a tick's: its slots and leases are the
	// database's).
	MaxSkew time.Duration
	// Now is the host's clock (nil: time.Now; tests move it).
	Now func() time.Time
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Client is the fleet database, as one connection at a time: a pgx
// connection is not safe for concurrent use, and a tick uses it from several
// goroutines (the lease's renewals, the running record, the outcome): mu
// serialises every use. A connection that broke is replaced at the next
// call (a lease held in the database survives it).
type Client struct {
	mu      sync.Mutex
	conn    *pgx.Conn // nil after it broke or was closed
	opts    Options
	cfg     *pgx.ConnConfig
	timeout time.Duration
	closed  bool
	// Skew is the host's clock minus the database's, as measured when
	// connecting.
	Skew time.Duration
	// blackouts are the fleet's windows as the last Gate read them.
	blackouts []byte
}

// Connect opens a connection, bounded by the timeout, and checks that the
// schema is one this helper understands and (with MaxSkew) that this host's
// clock agrees with the database's.
func Connect(ctx context.Context, o Options) (*Client, error) {
	c, err := dial(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := c.checkSchema(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// SessionSettings are sent as startup parameters on every connection, so
// that no server default or role setting decides for tickgate:
// statement_timeout and lock_timeout (the query bound), no idle session
// timeout (a tick's connection may idle between a lease's renewals), a
// bounded idle transaction, and TCP keepalives and a user timeout that let
// the server notice a vanished client within ~10 s, not the kernel's ~2 h
// (docs/fleet.md: nothing of a lease depends on the session;
// these only free the server's connection slots).
func SessionSettings(timeout time.Duration) map[string]string {
	ms := fmt.Sprint(timeout.Milliseconds())
	return map[string]string{
		"statement_timeout":                   ms,
		"lock_timeout":                        ms,
		"idle_session_timeout":                "0",
		"idle_in_transaction_session_timeout": fmt.Sprint(2 * timeout.Milliseconds()),
		"tcp_keepalives_idle":                 "4",
		"tcp_keepalives_interval":             "2",
		"tcp_keepalives_count":                "3",
		"tcp_user_timeout":                    "10000",
	}
}

// CheckTLS refuses a DSN that does not ask for TLS with the server's
// certificate and name checked (sslmode=verify-full): pgx's default,
// prefer, checks nothing and falls back to plaintext in silence.
func CheckTLS(cfg *pgconn.Config) error {
	ok := func(t *tls.Config) bool { return t != nil && !t.InsecureSkipVerify && t.ServerName != "" }
	good := ok(cfg.TLSConfig)
	for _, f := range cfg.Fallbacks {
		good = good && ok(f.TLSConfig)
	}
	if !good {
		return errors.New("the fleet DSN does not say sslmode=verify-full (with sslrootcert): tickgate refuses a connection whose server it cannot verify; set tickgate_fleet_insecure: true to accept one (docs/fleet.md)")
	}
	return nil
}

func dial(ctx context.Context, o Options) (*Client, error) {
	cfg, err := pgx.ParseConfig(o.DSN) // pgx redacts the password in its errors
	if err != nil {
		return nil, fmt.Errorf("fleet DSN: %w", err)
	}
	if !o.Insecure {
		if err := CheckTLS(&cfg.Config); err != nil {
			return nil, err
		}
	}
	t := o.timeout()
	cfg.ConnectTimeout = t
	// One round trip per statement, no statement kept on the server: what
	// a transaction pooler (PgBouncer) passes through.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	if o.AppName != "" {
		cfg.RuntimeParams["application_name"] = o.AppName
	}
	for k, v := range SessionSettings(t) {
		if _, set := cfg.RuntimeParams[k]; !set {
			cfg.RuntimeParams[k] = v
		}
	}
	// A cut network is noticed by TCP within ~10 s (keepalives, and a user
	// timeout for unacknowledged data), not after the kernel's two hours.
	d := &net.Dialer{
		Timeout:         t,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 4 * time.Second, Interval: 2 * time.Second, Count: 3},
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 10000)
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	cfg.DialFunc = d.DialContext
	c := &Client{opts: o, cfg: cfg, timeout: t}
	if err := c.open(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// open makes the connection (c.mu held, or c not shared yet): once more
// after "too many connections" (53300), with jitter; without the session
// settings when a pooler refuses them as startup parameters (PgBouncer
// without them in ignore_startup_parameters).
func (c *Client) open(ctx context.Context) error {
	connect := func(cfg *pgx.ConnConfig) (*pgx.Conn, error) {
		cctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		return pgx.ConnectConfig(cctx, cfg)
	}
	cfg := c.cfg
	conn, err := connect(cfg)
	if isCode(err, "53300") {
		time.Sleep(time.Duration(100+rand.IntN(500)) * time.Millisecond)
		conn, err = connect(cfg)
	}
	if err != nil && unsupportedStartup(err) {
		plain := cfg.Copy()
		for k := range SessionSettings(c.timeout) {
			delete(plain.RuntimeParams, k)
		}
		c.cfg = plain
		conn, err = connect(plain)
	}
	if err != nil {
		return fmt.Errorf("connecting to the fleet database %s: %w", where(c.cfg), explain(err))
	}
	c.conn = conn
	if c.opts.MaxSkew > 0 {
		if err := c.checkSkew(ctx); err != nil {
			c.conn.Close(context.Background())
			c.conn = nil
			return err
		}
	}
	return nil
}

func isCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// unsupportedStartup says a pooler refused a startup parameter.
func unsupportedStartup(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && strings.Contains(pe.Message, "unsupported startup parameter")
}

// checkSkew compares this host's clock with the database's, at the middle
// of one round trip.
func (c *Client) checkSkew(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	before := c.opts.now()
	var db time.Time
	if err := c.conn.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&db); err != nil {
		return fmt.Errorf("reading the fleet database's clock: %w", explain(err))
	}
	after := c.opts.now()
	host := before.Add(after.Sub(before) / 2)
	c.Skew = host.Sub(db)
	if c.Skew > c.opts.MaxSkew || -c.Skew > c.opts.MaxSkew {
		way := "ahead of"
		if c.Skew < 0 {
			way = "behind"
		}
		return fmt.Errorf("this host's clock is %s %s the fleet database's (host %s, database %s; at most %s): fix its time (NTP) — tickgate will not name a slot or read a lease by it",
			abs(c.Skew).Round(time.Millisecond), way, host.UTC().Format(time.RFC3339Nano), db.UTC().Format(time.RFC3339Nano), c.opts.MaxSkew)
	}
	return nil
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// where names the server without credentials.
func where(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("%s:%d/%s as %s", cfg.Host, cfg.Port, cfg.Database, cfg.User)
}

// explain keeps what PostgreSQL said, and says "timed out" plainly.
func explain(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Errorf("PostgreSQL said: %s (%s)", pe.Message, pe.Code)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("timed out (%w)", context.DeadlineExceeded)
	}
	return err
}

// Close closes the connection.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.drop()
}

// drop closes the connection (c.mu held); the next query opens another.
func (c *Client) drop() {
	if c.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	_ = c.conn.Close(ctx)
	c.conn = nil
}

// query takes the connection for one bounded use, opening one if the last
// broke; call the returned func when done, with the use's error: a
// connection that failed is dropped, so the next use opens a new one.
func (c *Client) query(ctx context.Context) (context.Context, func(error), error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, nil, errors.New("the fleet connection is closed")
	}
	qctx, cancel := context.WithTimeout(ctx, c.timeout)
	if c.conn == nil || c.conn.IsClosed() {
		c.conn = nil
		if err := c.open(qctx); err != nil {
			cancel()
			c.mu.Unlock()
			return nil, nil, err
		}
	}
	return qctx, func(error) {
		cancel()
		if c.conn != nil && c.conn.IsClosed() {
			c.conn = nil // broken (pgx closes it on I/O errors and timeouts): a fresh one next time
		}
		c.mu.Unlock()
	}, nil
}

// do runs fn on the connection, bounded by the timeout. A connection that
// broke under fn (a terminated backend, a server restart, a pooler that let
// go) is replaced and fn runs once more: every call of this package may be
// asked twice (a take of the same lease by the same token, a renewal, an
// upsert, a claim its own claimant finds taken by itself).
func (c *Client) do(ctx context.Context, fn func(context.Context, *pgx.Conn) error) error {
	for try := 0; ; try++ {
		qctx, done, err := c.query(ctx)
		if err != nil {
			return err
		}
		err = fn(qctx, c.conn)
		broken := err != nil && c.conn != nil && c.conn.IsClosed()
		done(err)
		if !broken || try > 0 || ctx.Err() != nil {
			return err
		}
	}
}

// Connected says whether the client holds a connection now.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil && !c.conn.IsClosed()
}

// Disconnect closes the connection but keeps the client: the next query
// opens another (a tick keeps none while it has nothing to renew).
func (c *Client) Disconnect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drop()
}

func (c *Client) checkSchema(ctx context.Context) error {
	var v int
	var present bool
	err := c.do(ctx, func(ctx context.Context, _ *pgx.Conn) (err error) {
		v, present, err = c.schemaVersion(ctx)
		return err
	})
	switch {
	case err != nil:
		return err
	case !present:
		return errors.New("the fleet database has no tickgate schema: run the deploy, which migrates it with tickgate_fleet_admin_dsn")
	case v > SchemaVersion:
		return fmt.Errorf("the fleet schema is version %d, newer than this helper understands (%d): upgrade the helper on this host", v, SchemaVersion)
	case v < SchemaVersion:
		return fmt.Errorf("the fleet schema is version %d, older than this helper needs (%d): run the deploy to migrate it", v, SchemaVersion)
	}
	return nil
}

// schemaVersion reads the fleet schema's version (within a query's bound,
// taken by the caller); present is false when the database has no tickgate
// schema or no meta table yet.
func (c *Client) schemaVersion(ctx context.Context) (v int, present bool, err error) {
	err = c.conn.QueryRow(ctx, "SELECT version FROM tickgate.meta").Scan(&v)
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000"):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("reading the fleet schema version: %w", explain(err))
	}
	return v, true, nil
}

// Gate reads the fleet gate (the same document and rules as the gate file),
// and in the same statement the fleet's blackout windows (Blackouts).
func (c *Client) Gate(ctx context.Context) (*gate.Gate, error) {
	var doc, windows []byte
	if err := c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `SELECT g.doc::text, coalesce((SELECT jsonb_agg(b.doc ORDER BY b.name) FROM tickgate.blackouts b), '[]'::jsonb)::text
			FROM tickgate.gate g WHERE g.id = 1`).Scan(&doc, &windows)
	}); err != nil {
		return nil, fmt.Errorf("reading the fleet gate: %w", explain(err))
	}
	c.blackouts = windows
	g, perr := gate.Parse(doc)
	if perr != nil {
		return nil, fmt.Errorf("the fleet gate is malformed: %w", perr)
	}
	return g, nil
}

// Blackouts are the fleet's blackout windows as a JSON list (package
// blackout reads it): those the last Gate read, else read now.
func (c *Client) Blackouts(ctx context.Context) ([]byte, error) {
	if c.blackouts != nil {
		return c.blackouts, nil
	}
	var windows []byte
	if err := c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT coalesce((SELECT jsonb_agg(doc ORDER BY name) FROM tickgate.blackouts), '[]'::jsonb)::text").Scan(&windows)
	}); err != nil {
		return nil, fmt.Errorf("reading the fleet's blackout windows: %w", explain(err))
	}
	c.blackouts = windows
	return windows, nil
}

// UpdateGate applies fn to the fleet gate in one transaction (the row is
// locked, so concurrent operators lose nothing). It needs the admin role.
// fn returning an error aborts without writing.
func (c *Client) UpdateGate(ctx context.Context, fn func(*gate.Gate) error) error {
	return c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		return c.updateGate(ctx, conn, fn)
	})
}

func (c *Client) updateGate(ctx context.Context, conn *pgx.Conn, fn func(*gate.Gate) error) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var doc []byte
		if err := tx.QueryRow(ctx, "SELECT doc::text FROM tickgate.gate WHERE id = 1 FOR UPDATE").Scan(&doc); err != nil {
			return fmt.Errorf("reading the fleet gate: %w", explain(err))
		}
		g, err := gate.Parse(doc)
		if err != nil {
			return fmt.Errorf("the fleet gate is malformed: %w", err)
		}
		if err := fn(g); err != nil {
			return err
		}
		out, err := json.Marshal(g)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE tickgate.gate SET doc = $1::jsonb, updated_at = now(), updated_by = current_user WHERE id = 1", string(out)); err != nil {
			return fmt.Errorf("writing the fleet gate: %w", explain(err))
		}
		return nil
	})
}

// ReadDSN reads a DSN file: a regular file (not a link) owned by root, the
// helper's user or the supervisor account, writable by no one else and
// readable by no one but its owner and group (a job's user must never read
// it), at most 4 KiB. The DSN never appears on a command line, in a unit or
// in the environment.
func ReadDSN(path string, owners *safefs.Owners) (string, error) {
	d, err := safefs.OpenRoot(filepath.Dir(path), false, 0)
	if err != nil {
		return "", fmt.Errorf("fleet DSN file: %w", err)
	}
	defer d.Close()
	data, fi, err := d.ReadOwned(filepath.Base(path), 4096, owners, true)
	if err != nil {
		return "", fmt.Errorf("fleet DSN file %s: %w", path, err)
	}
	if fi.Mode&0o004 != 0 {
		return "", fmt.Errorf("fleet DSN file %s has mode %04o: readable by everyone, so by every job's user (chmod o-r)", path, fi.Mode)
	}
	dsn := strings.TrimSpace(string(data))
	if dsn == "" {
		return "", fmt.Errorf("fleet DSN file %s is empty", path)
	}
	return dsn, nil
}

// Publish records this host's latest tick of job (any JSON document) for
// fleet status, in one short statement. Only a login role mapped to host
// may write host's rows (row-level security).
func (c *Client) Publish(ctx context.Context, host, job string, record any) error {
	doc, err := json.Marshal(record)
	if err != nil {
		return err
	}
	err = c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, `INSERT INTO tickgate.jobs AS j (host, job, record) VALUES ($1, $2, $3::jsonb)
			ON CONFLICT (host, job) DO UPDATE SET record = EXCLUDED.record, updated_at = now()`, host, job, string(doc))
		return err
	})
	if err != nil {
		return fmt.Errorf("publishing job %s of host %s: %w", job, host, explain(err))
	}
	return nil
}

// LastSuccess is job's latest success on any host, from the records hosts
// publish (nil: none recorded). A record whose time does not parse, or lies
// more than a minute ahead of the database's clock, is passed over: one
// host's bad record must not make a dependency look fresh or break it.
func (c *Client) LastSuccess(ctx context.Context, job string) (last *time.Time, err error) {
	err = c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		last = nil
		rows, err := conn.Query(ctx, `SELECT record->>'last_success_at', now() FROM tickgate.jobs
			WHERE job = $1 AND jsonb_typeof(record->'last_success_at') = 'string'`, job)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v string
			var now time.Time
			if err := rows.Scan(&v, &now); err != nil {
				return err
			}
			t, perr := time.Parse(time.RFC3339Nano, v)
			if perr != nil || t.After(now.Add(time.Minute)) {
				continue
			}
			if last == nil || t.After(*last) {
				t := t.UTC()
				last = &t
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("reading job %s's last success in the fleet: %w", job, explain(err))
	}
	return last, nil
}

// Record is one host's job as fleet status shows it.
type Record struct {
	Host      string          `json:"host"`
	Job       string          `json:"job"`
	Record    json.RawMessage `json:"record"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// LockHolder is a fleet lock group someone holds now.
type LockHolder struct {
	Group      string     `json:"lock"`
	Host       string     `json:"host"`
	Job        string     `json:"job"`
	PID        int        `json:"pid"`
	Since      *time.Time `json:"since"`
	Fence      int64      `json:"fence"`
	LeaseUntil *time.Time `json:"lease_until"`
}

// Records returns every host's job records, by host and job.
func (c *Client) Records(ctx context.Context) (out []Record, err error) {
	err = c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		out = nil
		rows, err := conn.Query(ctx, "SELECT host, job, record::text, updated_at FROM tickgate.jobs ORDER BY host, job")
		if err != nil {
			return err
		}
		for rows.Next() {
			var r Record
			var doc string
			if err := rows.Scan(&r.Host, &r.Job, &doc, &r.UpdatedAt); err != nil {
				return err
			}
			r.Record = json.RawMessage(doc)
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("reading the fleet's job records: %w", explain(err))
	}
	return out, nil
}

// Holders returns the fleet lock groups held now: those whose lease has not
// ended by the database's clock.
func (c *Client) Holders(ctx context.Context) (held []LockHolder, err error) {
	err = c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		held = nil
		rows, err := conn.Query(ctx, `SELECT lock_group, coalesce(host, ''), coalesce(job, ''), coalesce(pid, 0), since, fence, lease_until
			FROM tickgate.locks WHERE lease_until >= clock_timestamp() ORDER BY lock_group`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var h LockHolder
			if err := rows.Scan(&h.Group, &h.Host, &h.Job, &h.PID, &h.Since, &h.Fence, &h.LeaseUntil); err != nil {
				return err
			}
			held = append(held, h)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("reading the fleet locks: %w", explain(err))
	}
	return held, nil
}

// Slot is the latest claimed slot of a floating singleton.
type Slot struct {
	Job       string    `json:"job"`
	Slot      time.Time `json:"slot"` // the elapse that ends the slot
	Host      string    `json:"host"`
	ClaimedAt time.Time `json:"claimed_at"`
}

// ErrSlotTaken means the slot (or a later one) was already claimed; the
// returned Slot says by whom.
var ErrSlotTaken = errors.New("slot taken")

// ErrSlotSchedule means the claim's schedule is not the one the deploy
// registered for the job (a host that runs another schedule: a rolling
// deploy, a host's own variables): the returned Slot is empty.
var ErrSlotSchedule = errors.New("slot-schedule-mismatch")

// ClaimSlot claims slot (named by the elapse that ends it) of job for host,
// by schedule (the hash of the job's OnCalendar= lines). Exactly one
// claimant of a slot wins, whoever asks at the same moment: the row moves
// forward only when the slot is later than the one stored. A loser gets
// ErrSlotTaken and the slot that stands; a claim by another schedule than
// the registered one, ErrSlotSchedule; one further ahead of the database's
// clock than the job's interval allows, or of a job not registered, an
// error.
func (c *Client) ClaimSlot(ctx context.Context, job string, slot time.Time, host, schedule string) (out Slot, err error) {
	var status string
	var at, sl *time.Time
	var who, sched *string
	token := NewToken() // the same in a retry: a lost answer is recognised
	err = c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT status, slot, host, claimed_at, schedule FROM tickgate.claim_slot($1, $2, $3, $4, $5)",
			job, slot.UTC(), host, schedule, token).Scan(&status, &sl, &who, &at, &sched)
	})
	if err != nil {
		return Slot{}, fmt.Errorf("claiming slot %s of job %s: %w", slot.UTC().Format(time.RFC3339), job, explain(err))
	}
	out.Job = job
	if sl != nil {
		out.Slot = sl.UTC()
	}
	if who != nil {
		out.Host = *who
	}
	if at != nil {
		out.ClaimedAt = at.UTC()
	}
	switch status {
	case "claimed":
		return out, nil
	case "taken":
		return out, ErrSlotTaken
	case "schedule-mismatch":
		reg := "?"
		if sched != nil {
			reg = *sched
		}
		return Slot{}, fmt.Errorf("%w: this host's schedule (%s) is not the one the deploy registered for job %s (%s): deploy every host of the job with one schedule",
			ErrSlotSchedule, short(schedule), job, short(reg))
	case "too-far-ahead":
		return Slot{}, fmt.Errorf("slot %s of job %s is further ahead of the fleet database's clock (%s) than one interval: is this host's clock right?",
			slot.UTC().Format(time.RFC3339), job, out.ClaimedAt.Format(time.RFC3339))
	case "unregistered":
		return Slot{}, fmt.Errorf("job %s is not registered as a floating singleton in the fleet database: the deploy registers it (tickgate fleet migrate --singleton)", job)
	}
	return Slot{}, fmt.Errorf("claiming slot of job %s: unexpected answer %q", job, status)
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// Slots returns the latest claimed slot of every floating singleton.
func (c *Client) Slots(ctx context.Context) (out []Slot, err error) {
	err = c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		out = nil
		rows, err := conn.Query(ctx, "SELECT job, slot, host, claimed_at FROM tickgate.slots ORDER BY job")
		if err != nil {
			return err
		}
		for rows.Next() {
			var s Slot
			if err := rows.Scan(&s.Job, &s.Slot, &s.Host, &s.ClaimedAt); err != nil {
				return err
			}
			s.Slot, s.ClaimedAt = s.Slot.UTC(), s.ClaimedAt.UTC()
			out = append(out, s)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("reading the floating singletons' slots: %w", explain(err))
	}
	return out, nil
}

// backoffColumns are what every back-off query returns, in scanBackoff's order.
const backoffColumns = "lock_group, until, reason, set_by, set_at"

// scanBackoff reads one back-off row (times in UTC, marked as the fleet's).
func scanBackoff(row interface{ Scan(...any) error }) (*backoff.B, error) {
	var b backoff.B
	if err := row.Scan(&b.Lock, &b.Until, &b.Reason, &b.SetBy, &b.SetAt); err != nil {
		return nil, err
	}
	b.Until, b.SetAt, b.Fleet = b.Until.UTC(), b.SetAt.UTC(), true
	return &b, nil
}

// ExtendBackoff is an operator's back-off of a fleet lock group (the admin
// role): it ends at b.Until unless one already ends later; it returns the
// back-off that stands.
func (c *Client) ExtendBackoff(ctx context.Context, b backoff.B) (out *backoff.B, err error) {
	err = c.do(ctx, func(ctx context.Context, conn *pgx.Conn) (err error) {
		out, err = scanBackoff(conn.QueryRow(ctx, `INSERT INTO tickgate.backoffs AS b (lock_group, until, reason, set_by) VALUES ($1, $2, $3, $4)
			ON CONFLICT (lock_group) DO UPDATE SET until = EXCLUDED.until, reason = EXCLUDED.reason, set_by = EXCLUDED.set_by, set_at = now()
			WHERE b.until < EXCLUDED.until
			RETURNING `+backoffColumns, b.Lock, b.Until.UTC(), b.Reason, b.SetBy))
		if errors.Is(err, pgx.ErrNoRows) {
			out, err = backoffOf(ctx, conn, b.Lock) // a later back-off stands
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fleet back-off of lock group %s: %w", b.Lock, explain(err))
	}
	return out, nil
}

// JobBackoff is a job's back-off of its fleet lock group, through the
// database's check (the caller acts for host; at most 7 days ahead of the
// database's clock; a printable reason): the back-off that stands.
func (c *Client) JobBackoff(ctx context.Context, b backoff.B, host, job, run string) (out *backoff.B, err error) {
	err = c.do(ctx, func(ctx context.Context, conn *pgx.Conn) (err error) {
		out, err = scanBackoff(conn.QueryRow(ctx, "SELECT "+backoffColumns+" FROM tickgate.extend_backoff($1, $2, $3, $4, $5, $6)",
			b.Lock, b.Until.UTC(), b.Reason, host, job, run))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fleet back-off of lock group %s: %w", b.Lock, explain(err))
	}
	return out, nil
}

// Backoff returns a fleet lock group's back-off (nil: none).
func (c *Client) Backoff(ctx context.Context, lock string) (b *backoff.B, err error) {
	err = c.do(ctx, func(ctx context.Context, conn *pgx.Conn) (err error) {
		b, err = backoffOf(ctx, conn, lock)
		return err
	})
	return b, err
}

func backoffOf(ctx context.Context, conn *pgx.Conn, lock string) (*backoff.B, error) {
	b, err := scanBackoff(conn.QueryRow(ctx, "SELECT "+backoffColumns+" FROM tickgate.backoffs WHERE lock_group = $1", lock))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fleet back-off of lock group %s: %w", lock, explain(err))
	}
	return b, nil
}

// Backoffs returns every fleet back-off, ended ones included.
func (c *Client) Backoffs(ctx context.Context) (out []backoff.B, err error) {
	err = c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		out = nil
		rows, err := conn.Query(ctx, "SELECT "+backoffColumns+" FROM tickgate.backoffs ORDER BY lock_group")
		if err != nil {
			return err
		}
		for rows.Next() {
			b, err := scanBackoff(rows)
			if err != nil {
				return err
			}
			out = append(out, *b)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("reading the fleet back-offs: %w", explain(err))
	}
	return out, nil
}

// ClearBackoff removes a fleet lock group's back-off (the admin role's).
func (c *Client) ClearBackoff(ctx context.Context, lock string) (b *backoff.B, err error) {
	err = c.do(ctx, func(ctx context.Context, conn *pgx.Conn) (err error) {
		b, err = scanBackoff(conn.QueryRow(ctx, "DELETE FROM tickgate.backoffs WHERE lock_group = $1 RETURNING "+backoffColumns, lock))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("clearing the fleet back-off of lock group %s: %w", lock, explain(err))
	}
	return b, nil
}
