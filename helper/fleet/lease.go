package fleet

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultLeaseTTL is how long a fleet lock's lease lasts without a renewal.
const DefaultLeaseTTL = 30 * time.Second

// Holder says who takes a lock, for fleet status and the next holder's
// "busy" message.
type Holder struct {
	Host, Job string
	PID       int
}

// ErrLeaseLost means the database says the lease is no longer this
// holder's: its end passed (by the database's clock) and someone may hold
// it now.
var ErrLeaseLost = errors.New("fleet lease lost")

// Lease is a fleet lock group this holder holds until Until (the database's
// clock) unless it renews it. Its timing (docs/fleet.md):
//
//   - it is renewed every TTL/6;
//   - the holder keeps a deadline of its own on its monotonic clock, from
//     when it sent the last renewal that succeeded (at or before the moment
//     the database computed the new end): at SoftAt (TTL/2) without one it
//     asks its job to stop, at HardAt (3/4 TTL) it kills the job's whole
//     tree, a quarter of the lease before any other host may take it;
//   - a holder that cannot act (frozen) is stopped by systemd: the unit's
//     WatchdogSec= is TTL/6 and the holder feeds the watchdog only until
//     HardAt, so a frozen one dies by 11/12 TTL.
type Lease struct {
	c          *Client
	Group, Job string
	Host       string
	Token      string
	Fence      int64
	TTL        time.Duration // asked at every take and renewal

	mu     sync.Mutex // Keep's renewals against Status
	until  time.Time  // the lease's end, by the database's clock, as last granted
	okSent time.Time  // (monotonic) when the last take or renewal that succeeded was sent
}

// LeaseStatus is what a holder knows of its lease without asking the
// database: its end as last granted (the database's clock), and how long
// ago the holder sent the take or renewal that granted it.
type LeaseStatus struct {
	Group     string
	Fence     int64
	Until     time.Time
	Confirmed time.Duration // since the last take or renewal that succeeded was sent
	Sure      bool          // confirmed less than TTL/2 ago: no stop is due
}

// Status says where the lease stands now.
func (l *Lease) Status() LeaseStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	ago := time.Since(l.okSent)
	return LeaseStatus{Group: l.Group, Fence: l.Fence, Until: l.until, Confirmed: ago, Sure: ago < l.TTL/2}
}

// Until is the lease's end as last granted, by the database's clock.
func (l *Lease) Until() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until
}

// NewToken is a lease's secret: 128 random bits, known to its holder only.
func NewToken() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// TakeLease takes the lock group for ttl if no one holds it (or its lease
// ended by the database's clock): ErrBusy (wrapped with who holds it, and
// until when) otherwise. The fencing token grows by one, or to the server's
// timeline times 2^32 after a promotion, whichever is larger.
func (c *Client) TakeLease(ctx context.Context, group string, h Holder, ttl time.Duration) (_ *Lease, err error) {
	l := &Lease{c: c, Group: group, Job: h.Job, Host: h.Host, Token: NewToken(), TTL: ttl}
	var sent time.Time
	var taken bool
	var until, dbNow time.Time
	var holderHost, holderJob *string
	var fence *int64
	err = c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		sent = time.Now()
		return conn.QueryRow(ctx, "SELECT taken, fence, lease_until, holder_host, holder_job, db_now FROM tickgate.take_lease($1, $2, $3, $4, $5, $6)",
			group, h.Host, h.Job, h.PID, l.Token, int(ttl.Milliseconds())).Scan(&taken, &fence, &until, &holderHost, &holderJob, &dbNow)
	})
	if err != nil {
		return nil, fmt.Errorf("fleet lock group %s: %w", group, explain(err))
	}
	if !taken {
		who := "another host"
		if holderHost != nil && holderJob != nil {
			who = fmt.Sprintf("job %s on host %s", *holderJob, *holderHost)
		}
		f := int64(0)
		if fence != nil {
			f = *fence
		}
		return nil, fmt.Errorf("%w: held by %s (fence %d) until %s", ErrBusy, who, f, until.UTC().Format(time.RFC3339))
	}
	l.Fence, l.until, l.okSent = *fence, until.UTC(), sent
	return l, nil
}

// Renew extends the lease by its TTL from now (the database's clock):
// ErrLeaseLost when the database says it is no longer this holder's; any
// other error leaves it as it was (the holder's own deadline decides).
func (l *Lease) Renew(ctx context.Context) error {
	var sent time.Time
	var renewed bool
	var until *time.Time
	var dbNow time.Time
	err := l.c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		sent = time.Now()
		return conn.QueryRow(ctx, "SELECT renewed, lease_until, db_now FROM tickgate.renew_lease($1, $2, $3, $4, $5)",
			l.Group, l.Host, l.Token, l.Fence, int(l.TTL.Milliseconds())).Scan(&renewed, &until, &dbNow)
	})
	if err != nil {
		return fmt.Errorf("renewing fleet lock group %s: %w", l.Group, explain(err))
	}
	if !renewed || until == nil {
		return fmt.Errorf("%w: lock group %s (fence %d): the database's clock (%s) is past its end, or another holder has it",
			ErrLeaseLost, l.Group, l.Fence, dbNow.UTC().Format(time.RFC3339))
	}
	l.mu.Lock()
	l.until, l.okSent = until.UTC(), sent
	l.mu.Unlock()
	return nil
}

// Release gives the lease back (keeping the fence), so the next holder need
// not wait for its end.
func (l *Lease) Release(ctx context.Context) error {
	var ok bool
	if err := l.c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT tickgate.release_lease($1, $2, $3, $4)", l.Group, l.Host, l.Token, l.Fence).Scan(&ok)
	}); err != nil {
		return fmt.Errorf("releasing fleet lock group %s: %w", l.Group, explain(err))
	}
	return nil
}

// RenewEvery is how often a held lease is renewed.
func (l *Lease) RenewEvery() time.Duration { return l.TTL / 6 }

// BeatEvery is how often the holder feeds the unit's watchdog: twice per
// WatchdogSec= (TTL/6), at most every second.
func (l *Lease) BeatEvery() time.Duration { return min(time.Second, l.TTL/12) }

// SoftAt is when (monotonic) the holder asks its job to stop, without a
// renewal since.
func (l *Lease) SoftAt() time.Time { return l.LastOK().Add(l.TTL / 2) }

// HardAt is when (monotonic) the holder kills its job's whole tree, without
// a renewal since: a quarter of the lease before its end.
func (l *Lease) HardAt() time.Time { return l.LastOK().Add(l.TTL * 3 / 4) }

// LastOK is when the last take or renewal that succeeded was sent.
func (l *Lease) LastOK() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.okSent
}

// Event is what the holder of a lease must do now.
type Event struct {
	Kind string // "soft": ask the job to stop; "hard": kill its tree now
	Err  error  // why
}

// Keep renews the lease every RenewEvery until stop is called, and says on
// events what the holder must do: "soft" when no renewal succeeded for
// TTL/2, "hard" at HardAt or at once when the database says the lease is
// lost. alive is called after every renewal that succeeded and every
// BeatEvery before HardAt (the unit's watchdog). stop ends it and waits.
func (l *Lease) Keep(alive func()) (events <-chan Event, stop func()) {
	ch := make(chan Event, 2)
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		renew := time.NewTimer(l.RenewEvery())
		defer renew.Stop()
		beat := time.NewTicker(l.BeatEvery())
		defer beat.Stop()
		soft := false
		var last error
		for {
			now := time.Now()
			if now.After(l.HardAt()) {
				ch <- Event{"hard", fmt.Errorf("%w: lock group %s (fence %d): no renewal since %s ago (%v)", ErrLeaseLost, l.Group, l.Fence,
					now.Sub(l.LastOK()).Round(time.Millisecond), last)}
				return
			}
			if !soft && now.After(l.SoftAt()) {
				soft = true
				ch <- Event{"soft", fmt.Errorf("fleet lock group %s (fence %d): no renewal for %s (%v)", l.Group, l.Fence,
					now.Sub(l.LastOK()).Round(time.Millisecond), last)}
			}
			select {
			case <-ctx.Done():
				return
			case <-beat.C:
				if time.Now().Before(l.HardAt()) && alive != nil {
					alive()
				}
			case <-renew.C:
				err := l.Renew(ctx)
				switch {
				case ctx.Err() != nil:
					return
				case errors.Is(err, ErrLeaseLost):
					ch <- Event{"hard", err}
					return
				case err != nil:
					last = err
					renew.Reset(time.Second) // again soon
				default:
					last = nil
					if alive != nil {
						alive()
					}
					renew.Reset(l.RenewEvery())
				}
			}
		}
	}()
	return ch, func() { cancel(); <-finished }
}

// ScheduleHash names a floating singleton's schedule: the SHA-256 of its
// OnCalendar= lines joined by newlines, as the deploy registers it (the
// role computes the same from the job's schedule list).
func ScheduleHash(specs []string) string {
	h := sha256.Sum256([]byte(strings.Join(specs, "\n")))
	return hex.EncodeToString(h[:])
}
