package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Start is an operator's request to run a floating singleton once, on one
// host of the fleet whose timer is armed (tickgate start --fleet), and how
// it went.
type Start struct {
	ID          int64      `json:"id"`
	Job         string     `json:"job"`
	Force       bool       `json:"force"`
	RequestedBy string     `json:"requested_by"`
	RequestedAt time.Time  `json:"requested_at"`
	TakenBy     string     `json:"taken_by,omitempty"`
	TakenAt     *time.Time `json:"taken_at,omitempty"`
	Invocation  string     `json:"invocation,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	Result      string     `json:"result,omitempty"`
	ExitCode    *int       `json:"exit_code,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	Duration    float64    `json:"duration_seconds,omitempty"`
	// Lapsed: no host took it within StartLapse of its request.
	Lapsed bool `json:"lapsed,omitempty"`
}

// StartLapse is how long a request waits for a host to take it.
const StartLapse = 10 * time.Minute

// RequestStart asks for one run of job (a registered floating singleton) on
// one host of the fleet; a request of the job that waits already is
// returned instead of a second.
func (c *Client) RequestStart(ctx context.Context, host, job string, force bool) (id int64, err error) {
	err = c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT tickgate.request_start($1, $2, $3)", host, job, force).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("requesting a fleet start of job %s: %w", job, explain(err))
	}
	return id, nil
}

// TakeStart takes the oldest waiting request of job for host: ok is false
// when none waits (or another host took it).
func (c *Client) TakeStart(ctx context.Context, host, job string) (id int64, force, ok bool, err error) {
	err = c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		ok = false
		e := conn.QueryRow(ctx, "SELECT id, force FROM tickgate.take_start($1, $2)", host, job).Scan(&id, &force)
		if errors.Is(e, pgx.ErrNoRows) {
			return nil
		}
		ok = e == nil
		return e
	})
	if err != nil {
		return 0, false, false, fmt.Errorf("taking a fleet start of job %s: %w", job, explain(err))
	}
	return id, force, ok, nil
}

// FinishStart records how the run of request id went (only by the host
// that took it, once).
func (c *Client) FinishStart(ctx context.Context, host string, id int64, s Start) error {
	var ok bool
	err := c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		exit := -1
		if s.ExitCode != nil {
			exit = *s.ExitCode
		}
		return conn.QueryRow(ctx, "SELECT tickgate.finish_start($1, $2, $3, $4, $5, $6, $7)",
			host, id, s.Invocation, s.Result, exit, s.Reason, s.Duration).Scan(&ok)
	})
	if err != nil {
		return fmt.Errorf("reporting fleet start #%d: %w", id, explain(err))
	}
	if !ok {
		return fmt.Errorf("reporting fleet start #%d: not taken by host %s, or reported already", id, host)
	}
	return nil
}

// StartOf reads request id.
func (c *Client) StartOf(ctx context.Context, id int64) (s Start, err error) {
	err = c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		var takenBy, inv, result, reason *string
		var exit *int
		var dur *float64
		var now time.Time
		e := conn.QueryRow(ctx, `SELECT id, job, force, requested_by, requested_at, taken_by, taken_at, invocation, finished_at,
			result, exit_code, reason, duration_seconds, clock_timestamp() FROM tickgate.starts WHERE id = $1`, id).Scan(
			&s.ID, &s.Job, &s.Force, &s.RequestedBy, &s.RequestedAt, &takenBy, &s.TakenAt, &inv, &s.FinishedAt,
			&result, &exit, &reason, &dur, &now)
		if e != nil {
			return e
		}
		s.TakenBy, s.Invocation, s.Result, s.Reason = deref(takenBy), deref(inv), deref(result), deref(reason)
		s.ExitCode = exit
		if dur != nil {
			s.Duration = *dur
		}
		s.Lapsed = takenBy == nil && now.Sub(s.RequestedAt) > StartLapse
		return nil
	})
	if err != nil {
		return Start{}, fmt.Errorf("reading fleet start #%d: %w", id, explain(err))
	}
	return s, nil
}

// MappedHosts are the hosts the connected login role may act for.
func (c *Client) MappedHosts(ctx context.Context) (hosts []string, err error) {
	err = c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		hosts = nil
		rows, e := conn.Query(ctx, "SELECT host FROM tickgate.hosts WHERE role = session_user ORDER BY host")
		if e != nil {
			return e
		}
		for rows.Next() {
			var h string
			if e := rows.Scan(&h); e != nil {
				return e
			}
			hosts = append(hosts, h)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("reading the hosts this role acts for: %w", explain(err))
	}
	return hosts, nil
}

// Singletons are the jobs registered as floating singletons.
func (c *Client) Singletons(ctx context.Context) (jobs []string, err error) {
	err = c.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		jobs = nil
		rows, e := conn.Query(ctx, "SELECT job FROM tickgate.singletons ORDER BY job")
		if e != nil {
			return e
		}
		for rows.Next() {
			var j string
			if e := rows.Scan(&j); e != nil {
				return e
			}
			jobs = append(jobs, j)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("reading the floating singletons: %w", explain(err))
	}
	return jobs, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
