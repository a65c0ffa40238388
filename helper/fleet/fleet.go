// Package fleet coordinates tickgate across hosts through PostgreSQL (13 or
// newer): one fleet gate, and lock groups held fleet-wide by session-level
// advisory locks with a fencing token that only grows. No consensus of our
// own: the database is the one place.
//
// Every call is bounded (Options.Timeout, default 3 s, for connecting and
// for each query); a held lock is watched (Held.Watch) so that its loss —
// the connection cut, the backend terminated, the server restarted — is
// noticed within about ten seconds.
package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
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
const SchemaVersion = 4

// DefaultTimeout bounds connecting and each query.
const DefaultTimeout = 3 * time.Second

// ErrBusy means another holder has the fleet lock group.
var ErrBusy = errors.New("fleet lock busy")

// Options say how to reach the fleet database.
type Options struct {
	DSN     string        // libpq URL or key=value; TLS through its own parameters (sslmode, sslrootcert)
	Timeout time.Duration // connecting and each query (0: DefaultTimeout)
	AppName string        // application_name, e.g. "tickgate host1 harvest"
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

// Client is one connection to the fleet database. A pgx connection is not
// safe for concurrent use, and a tick uses it from several goroutines (the
// lock watch, the running record, the outcome): mu serialises every use.
type Client struct {
	mu      sync.Mutex
	conn    *pgx.Conn
	timeout time.Duration
}

// Connect opens a connection, bounded by the timeout, and checks that the
// schema is one this helper understands.
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

func dial(ctx context.Context, o Options) (*Client, error) {
	cfg, err := pgx.ParseConfig(o.DSN) // pgx redacts the password in its errors
	if err != nil {
		return nil, fmt.Errorf("fleet DSN: %w", err)
	}
	t := o.timeout()
	cfg.ConnectTimeout = t
	if o.AppName != "" {
		cfg.RuntimeParams["application_name"] = o.AppName
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
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to the fleet database %s: %w", where(cfg), explain(err))
	}
	return &Client{conn: conn, timeout: t}, nil
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

// Close closes the connection (a held lock is released by the server).
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	_ = c.conn.Close(ctx)
}

// query takes the connection for one bounded use; call the returned func
// when done.
func (c *Client) query(ctx context.Context) (context.Context, context.CancelFunc) {
	c.mu.Lock()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	return ctx, func() { cancel(); c.mu.Unlock() }
}

func (c *Client) checkSchema(ctx context.Context) error {
	ctx, cancel := c.query(ctx)
	defer cancel()
	v, present, err := c.schemaVersion(ctx)
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

// Gate reads the fleet gate (the same document and rules as the gate file).
func (c *Client) Gate(ctx context.Context) (*gate.Gate, error) {
	ctx, cancel := c.query(ctx)
	defer cancel()
	var doc []byte
	if err := c.conn.QueryRow(ctx, "SELECT doc::text FROM tickgate.gate WHERE id = 1").Scan(&doc); err != nil {
		return nil, fmt.Errorf("reading the fleet gate: %w", explain(err))
	}
	g, err := gate.Parse(doc)
	if err != nil {
		return nil, fmt.Errorf("the fleet gate is malformed: %w", err)
	}
	return g, nil
}

// UpdateGate applies fn to the fleet gate in one transaction (the row is
// locked, so concurrent operators lose nothing). It needs the admin role.
// fn returning an error aborts without writing.
func (c *Client) UpdateGate(ctx context.Context, fn func(*gate.Gate) error) error {
	ctx, cancel := c.query(ctx)
	defer cancel()
	return pgx.BeginFunc(ctx, c.conn, func(tx pgx.Tx) error {
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

// Key is the advisory lock key of a lock group: 64 bits of a SHA-256, so two
// groups never share a key in practice.
func Key(group string) int64 {
	sum := sha256.Sum256([]byte("tickgate-lock:" + group))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// Holder says who holds a lock, for fleet status and for the next holder's
// "busy" message.
type Holder struct {
	Host, Job string
	PID       int
}

// Held is a fleet lock group this client holds.
type Held struct {
	c     *Client
	Group string
	Key   int64
	Fence int64 // grows with every acquisition of the group
}

// TryLock takes the fleet lock group without waiting: ErrBusy (wrapped with
// who holds it, if known) when another session has it. The fencing token is
// raised in the same breath.
func (c *Client) TryLock(ctx context.Context, group string, h Holder) (*Held, error) {
	key := Key(group)
	qctx, cancel := c.query(ctx)
	defer cancel()
	var ok bool
	if err := c.conn.QueryRow(qctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil {
		return nil, fmt.Errorf("fleet lock group %s: %w", group, explain(err))
	}
	if !ok {
		var host, job *string
		var pid *int
		var fence int64
		_ = c.conn.QueryRow(qctx, "SELECT host, job, pid, fence FROM tickgate.locks WHERE lock_group = $1", group).Scan(&host, &job, &pid, &fence)
		if host != nil && job != nil {
			return nil, fmt.Errorf("%w: held by job %s on host %s (fence %d)", ErrBusy, *job, *host, fence)
		}
		return nil, ErrBusy
	}
	var fence int64
	err := c.conn.QueryRow(qctx, `INSERT INTO tickgate.locks AS l (lock_group, fence, host, job, pid, since)
		VALUES ($1, 1, $2, $3, $4, now())
		ON CONFLICT (lock_group) DO UPDATE SET fence = l.fence + 1, host = EXCLUDED.host, job = EXCLUDED.job,
			pid = EXCLUDED.pid, since = EXCLUDED.since
		RETURNING fence`, group, h.Host, h.Job, h.PID).Scan(&fence)
	if err != nil {
		_, _ = c.conn.Exec(qctx, "SELECT pg_advisory_unlock($1)", key)
		return nil, fmt.Errorf("fleet lock group %s: raising the fencing token: %w", group, explain(err))
	}
	return &Held{c: c, Group: group, Key: key, Fence: fence}, nil
}

// grantedAdvisory selects granted session advisory locks taken with one
// bigint key, and advisoryKey rebuilds that key from the halves pg_locks
// shows (classid the high 32 bits, objid the low; the shift wraps like
// Go's int64 conversion).
const (
	grantedAdvisory = `FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1`
	advisoryKey     = `((classid::bigint << 32) | objid::bigint)`
)

// StillHeld asks the server whether this session still holds the lock.
func (h *Held) StillHeld(ctx context.Context) error {
	ctx, cancel := h.c.query(ctx)
	defer cancel()
	var held bool
	err := h.c.conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 "+grantedAdvisory+" AND pid = pg_backend_pid() AND "+advisoryKey+" = $1)",
		h.Key).Scan(&held)
	if err != nil {
		return fmt.Errorf("fleet lock group %s lost: %w", h.Group, explain(err))
	}
	if !held {
		return fmt.Errorf("fleet lock group %s lost: the server no longer has it for this session", h.Group)
	}
	return nil
}

// Watch checks every interval that the lock is still held; the channel
// gets one error when it is not. stop ends the watch and waits for it, so
// the connection is free when stop returns.
func (h *Held) Watch(interval time.Duration) (lost <-chan error, stop func()) {
	ch := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := h.StillHeld(ctx); err != nil && ctx.Err() == nil {
					ch <- err
					return
				}
			}
		}
	}()
	return ch, func() { cancel(); <-done }
}

// Release gives the lock back and clears the holder (keeping the fence).
func (h *Held) Release(ctx context.Context) error {
	ctx, cancel := h.c.query(ctx)
	defer cancel()
	if _, err := h.c.conn.Exec(ctx, "UPDATE tickgate.locks SET host = NULL, job = NULL, pid = NULL, since = NULL WHERE lock_group = $1 AND fence = $2", h.Group, h.Fence); err != nil {
		return fmt.Errorf("fleet lock group %s: %w", h.Group, explain(err))
	}
	if _, err := h.c.conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", h.Key); err != nil {
		return fmt.Errorf("fleet lock group %s: %w", h.Group, explain(err))
	}
	return nil
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
// fleet status.
func (c *Client) Publish(ctx context.Context, host, job string, record any) error {
	doc, err := json.Marshal(record)
	if err != nil {
		return err
	}
	ctx, cancel := c.query(ctx)
	defer cancel()
	_, err = c.conn.Exec(ctx, `INSERT INTO tickgate.jobs AS j (host, job, record) VALUES ($1, $2, $3::jsonb)
		ON CONFLICT (host, job) DO UPDATE SET record = EXCLUDED.record, updated_at = now()`, host, job, string(doc))
	if err != nil {
		return fmt.Errorf("publishing job %s of host %s: %w", job, host, explain(err))
	}
	return nil
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
	Group string     `json:"lock"`
	Host  string     `json:"host"`
	Job   string     `json:"job"`
	PID   int        `json:"pid"`
	Since *time.Time `json:"since"`
	Fence int64      `json:"fence"`
}

// Records returns every host's job records, by host and job.
func (c *Client) Records(ctx context.Context) ([]Record, error) {
	ctx, cancel := c.query(ctx)
	defer cancel()
	rows, err := c.conn.Query(ctx, "SELECT host, job, record::text, updated_at FROM tickgate.jobs ORDER BY host, job")
	if err != nil {
		return nil, fmt.Errorf("reading the fleet's job records: %w", explain(err))
	}
	var out []Record
	for rows.Next() {
		var r Record
		var doc string
		if err := rows.Scan(&r.Host, &r.Job, &doc, &r.UpdatedAt); err != nil {
			return nil, err
		}
		r.Record = json.RawMessage(doc)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Holders returns the fleet lock groups held now: a row of tickgate.locks
// whose advisory lock the server says is granted (a crashed holder's row is
// not shown).
func (c *Client) Holders(ctx context.Context) ([]LockHolder, error) {
	ctx, cancel := c.query(ctx)
	defer cancel()
	rows, err := c.conn.Query(ctx, "SELECT lock_group, coalesce(host, ''), coalesce(job, ''), coalesce(pid, 0), since, fence FROM tickgate.locks ORDER BY lock_group")
	if err != nil {
		return nil, fmt.Errorf("reading the fleet locks: %w", explain(err))
	}
	var all []LockHolder
	for rows.Next() {
		var h LockHolder
		if err := rows.Scan(&h.Group, &h.Host, &h.Job, &h.PID, &h.Since, &h.Fence); err != nil {
			return nil, err
		}
		all = append(all, h)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	keys, err := c.conn.Query(ctx, "SELECT "+advisoryKey+" "+grantedAdvisory)
	if err != nil {
		return nil, fmt.Errorf("reading the fleet locks: %w", explain(err))
	}
	granted := map[int64]bool{}
	for keys.Next() {
		var k int64
		if err := keys.Scan(&k); err != nil {
			return nil, err
		}
		granted[k] = true
	}
	if err := keys.Err(); err != nil {
		return nil, fmt.Errorf("reading the fleet locks: %w", explain(err))
	}
	var held []LockHolder
	for _, h := range all {
		if granted[Key(h.Group)] {
			held = append(held, h)
		}
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

// ClaimSlot claims slot (named by the elapse that ends it) of job for host.
// Exactly one claimant of a slot wins, whoever asks at the same moment: the
// row moves forward only when the slot is later than the one stored. A loser
// gets ErrSlotTaken and the slot that stands.
func (c *Client) ClaimSlot(ctx context.Context, job string, slot time.Time, host string) (Slot, error) {
	ctx, cancel := c.query(ctx)
	defer cancel()
	var s Slot
	err := c.conn.QueryRow(ctx, `INSERT INTO tickgate.slots AS s (job, slot, host) VALUES ($1, $2, $3)
		ON CONFLICT (job) DO UPDATE SET slot = EXCLUDED.slot, host = EXCLUDED.host, claimed_at = now()
		WHERE s.slot < EXCLUDED.slot
		RETURNING job, slot, host, claimed_at`, job, slot.UTC(), host).Scan(&s.Job, &s.Slot, &s.Host, &s.ClaimedAt)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Slot{}, fmt.Errorf("claiming slot %s of job %s: %w", slot.UTC().Format(time.RFC3339), job, explain(err))
	}
	if err := c.conn.QueryRow(ctx, "SELECT job, slot, host, claimed_at FROM tickgate.slots WHERE job = $1", job).
		Scan(&s.Job, &s.Slot, &s.Host, &s.ClaimedAt); err != nil {
		return Slot{}, fmt.Errorf("reading slot of job %s: %w", job, explain(err))
	}
	return s, ErrSlotTaken
}

// Slots returns the latest claimed slot of every floating singleton.
func (c *Client) Slots(ctx context.Context) ([]Slot, error) {
	ctx, cancel := c.query(ctx)
	defer cancel()
	rows, err := c.conn.Query(ctx, "SELECT job, slot, host, claimed_at FROM tickgate.slots ORDER BY job")
	if err != nil {
		return nil, fmt.Errorf("reading the floating singletons' slots: %w", explain(err))
	}
	var out []Slot
	for rows.Next() {
		var s Slot
		if err := rows.Scan(&s.Job, &s.Slot, &s.Host, &s.ClaimedAt); err != nil {
			return nil, err
		}
		s.Slot, s.ClaimedAt = s.Slot.UTC(), s.ClaimedAt.UTC()
		out = append(out, s)
	}
	return out, rows.Err()
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

// ExtendBackoff sets a fleet lock group's back-off to end at b.Until unless
// it already ends later, in one statement; it returns the back-off that
// stands.
func (c *Client) ExtendBackoff(ctx context.Context, b backoff.B) (*backoff.B, error) {
	ctx, cancel := c.query(ctx)
	defer cancel()
	out, err := scanBackoff(c.conn.QueryRow(ctx, `INSERT INTO tickgate.backoffs AS b (lock_group, until, reason, set_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT (lock_group) DO UPDATE SET until = EXCLUDED.until, reason = EXCLUDED.reason, set_by = EXCLUDED.set_by, set_at = now()
		WHERE b.until < EXCLUDED.until
		RETURNING `+backoffColumns, b.Lock, b.Until.UTC(), b.Reason, b.SetBy))
	if errors.Is(err, pgx.ErrNoRows) {
		return c.backoff(ctx, b.Lock) // a later back-off stands
	}
	if err != nil {
		return nil, fmt.Errorf("fleet back-off of lock group %s: %w", b.Lock, explain(err))
	}
	return out, nil
}

// Backoff returns a fleet lock group's back-off (nil: none).
func (c *Client) Backoff(ctx context.Context, lock string) (*backoff.B, error) {
	ctx, cancel := c.query(ctx)
	defer cancel()
	return c.backoff(ctx, lock)
}

func (c *Client) backoff(ctx context.Context, lock string) (*backoff.B, error) {
	b, err := scanBackoff(c.conn.QueryRow(ctx, "SELECT "+backoffColumns+" FROM tickgate.backoffs WHERE lock_group = $1", lock))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fleet back-off of lock group %s: %w", lock, explain(err))
	}
	return b, nil
}

// Backoffs returns every fleet back-off, ended ones included.
func (c *Client) Backoffs(ctx context.Context) ([]backoff.B, error) {
	ctx, cancel := c.query(ctx)
	defer cancel()
	rows, err := c.conn.Query(ctx, "SELECT "+backoffColumns+" FROM tickgate.backoffs ORDER BY lock_group")
	if err != nil {
		return nil, fmt.Errorf("reading the fleet back-offs: %w", explain(err))
	}
	var out []backoff.B
	for rows.Next() {
		b, err := scanBackoff(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *b)
	}
	return out, rows.Err()
}

// ClearBackoff removes a fleet lock group's back-off (the admin role's).
func (c *Client) ClearBackoff(ctx context.Context, lock string) (*backoff.B, error) {
	ctx, cancel := c.query(ctx)
	defer cancel()
	b, err := scanBackoff(c.conn.QueryRow(ctx, "DELETE FROM tickgate.backoffs WHERE lock_group = $1 RETURNING "+backoffColumns, lock))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("clearing the fleet back-off of lock group %s: %w", lock, explain(err))
	}
	return b, nil
}
