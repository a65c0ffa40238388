// Package admit answers one question for `tickgate run`, its retries,
// `tickgate gate check` (inside a job, through its supervisor, or as an
// operator) and `tickgate catch-up` alike: may this job start now?
//
// The answer is one ordered list of named steps (Steps), each asked only if
// every step before it let the job through:
//
//  1. markers     its done and halted markers (75)
//  2. host-gate   this host's gate: closed, the job paused, a rollout window
//     (75; 78 for a gate file that cannot be used, unless --gate-fail open)
//  3. blackout    a recurring blackout window (tickgate_blackouts) that is
//     open, or opens within the job's expected runtime (75; 78 when it
//     cannot be evaluated, unless --gate-fail open)
//  4. fleet-gate  the fleet gate and the fleet's blackout windows, with fleet
//     coordination (75; 78 when the
//     database cannot be asked, unless --gate-fail open lets a job that
//     neither holds a fleet lock nor floats go on)
//  5. backoff     the lock group's back-off on this host, and the fleet's for
//     a fleet-scoped lock group (75)
//  6. requires    its dependencies (requires: {job, succeeded_within, scope}):
//     each named job's last success recent enough (75, dependency-stale)
//  7. deadline    a run due more than --start-deadline ago (75; only when the
//     tick knows when it was due)
//
// An operator's forced start (tickgate start --force, Subject.Force) goes
// past a closed gate, a pause, a rollout window and a blackout (2-4), with a
// warning; every other step stops it as it stops any tick.
//
// Callers differ only in what they know (a Subject), never in the rules.
package admit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/blackout"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/gate"
	"github.com/tickgate/tickgate/helper/reason"
	"github.com/tickgate/tickgate/helper/require"
	"github.com/tickgate/tickgate/helper/safefs"
	"github.com/tickgate/tickgate/helper/state"
)

// The steps, by name, as Decision.Step reports them.
const (
	Markers   = "markers"
	HostGate  = "host-gate"
	Blackout  = "blackout"
	FleetGate = "fleet-gate"
	Backoff   = "backoff"
	Requires  = "requires"
	Deadline  = "deadline"
)

// Policy is what a job declared.
type Policy struct {
	ExpectedRuntime time.Duration // for the rollout window (0: ignore it)
	GateFailOpen    bool          // an unusable gate file (or fleet) lets the job run, with a warning
}

// Fleet is the fleet database as admission asks it.
type Fleet interface {
	// LastSuccess is a job's latest success on any host (nil: none).
	LastSuccess(ctx context.Context, job string) (*time.Time, error)
	Gate(ctx context.Context) (*gate.Gate, error)
	// Blackouts are the fleet's blackout windows, a JSON list (package
	// blackout), as read with the gate.
	Blackouts(ctx context.Context) ([]byte, error)
	Backoff(ctx context.Context, lock string) (*backoff.B, error)
}

// Subject is the job that asks, and where its steps look.
type Subject struct {
	Job      string
	Dir      *state.Job // the job's state dir (nil: it has none yet)
	GatePath string
	Lock     string         // its lock group (the back-off step)
	LockDir  string         // where host back-offs live ("" = none)
	Owners   *safefs.Owners // who may own the back-off files
	Policy   Policy

	Fleet     Fleet // nil: this host works alone
	FleetLock bool  // the lock group is held fleet-wide: never runs without the fleet, obeys its back-off
	Singleton bool  // a floating singleton: never runs without the fleet

	// Due is when the tick was due (nil: not known, or a start off the
	// schedule: a manual start, a retry, a check from inside the job).
	Due           *time.Time
	StartDeadline time.Duration

	// Blackouts are the recurring windows that apply to the job.
	Blackouts []blackout.Window

	// Requires are the job's preconditions: its dependencies on other
	// jobs' recent success are asked here (the requires step), on this
	// host's state (States) or the fleet's records. Its check commands run
	// only in a tick (package runner), never in a gate check.
	Requires []require.Requirement
	States   state.Store

	// Force is an operator's forced start (tickgate start --force): a closed
	// gate, a pause and a rollout window, on the host and the fleet, let it
	// through with a warning. Markers, back-offs, lock groups and a fleet
	// that cannot be asked stop it as they stop any tick.
	Force bool
}

// Decision is the answer. When not Allowed, Step names the step that said
// no, Code is the exit code (75 skipped, 78 unusable) and Reason says why.
type Decision struct {
	Allowed bool
	Step    string
	Code    int
	Reason  string
	// Warnings are the problems --gate-fail open let the job go past.
	Warnings []string
	// Gate is the host gate as read (nil: not read, or unusable), GateRead
	// says whether it was read at all.
	Gate     *gate.Gate
	GateRead bool
	// Backoff is the lock group's back-off as read (nil: none).
	Backoff *backoff.B
	// FleetDown: the fleet could not be asked and --gate-fail open let the
	// job go on under the host's rules alone.
	FleetDown bool
}

type step struct {
	name string
	ask  func(ctx context.Context, s *Subject, now time.Time, d *Decision) bool // false: stop here
}

var steps = []step{
	{Markers, markers},
	{HostGate, hostGate},
	{Blackout, blackouts},
	{FleetGate, fleetGate},
	{Backoff, backoffs},
	{Requires, dependencies},
	{Deadline, deadline},
}

// Steps are the names of the steps, in the order they are asked.
func Steps() []string {
	out := make([]string, len(steps))
	for i, st := range steps {
		out[i] = st.name
	}
	return out
}

// Decide asks every step in order; the first that says no decides.
func Decide(ctx context.Context, s Subject, now time.Time) Decision {
	d := Decision{Allowed: true}
	for _, st := range steps {
		if !st.ask(ctx, &s, now, &d) {
			d.Allowed, d.Step = false, st.name
			return d
		}
	}
	return d
}

func (d *Decision) deny(code int, why string) bool {
	d.Code, d.Reason = code, why
	return false
}

func markers(_ context.Context, s *Subject, _ time.Time, d *Decision) bool {
	if s.Dir == nil {
		return true
	}
	for _, name := range []string{state.MarkerDone, state.MarkerHalted} {
		// A marker that cannot be read still stops the job: its reason says why.
		if m, _ := s.Dir.ReadMarker(name); m != nil {
			return d.deny(exitcode.Skipped, reason.F(name, "%s", m.Reason))
		}
	}
	return true
}

func hostGate(_ context.Context, s *Subject, now time.Time, d *Decision) bool {
	d.GateRead = true
	g, _, err := gate.Load(s.GatePath)
	if err != nil {
		if s.Policy.GateFailOpen {
			d.Warnings = append(d.Warnings, reason.F(reason.GateUnusable, "%v; running anyway (--gate-fail open)", err))
			return true
		}
		return d.deny(exitcode.GateBad, reason.F(reason.GateUnusable, "%v", err))
	}
	d.Gate = g
	if e := g.Evaluate(s.Job, now, s.Policy.ExpectedRuntime); !e.Allowed {
		if s.Force {
			d.Warnings = append(d.Warnings, e.Reason+"; running anyway (tickgate start --force)")
			return true
		}
		return d.deny(exitcode.Skipped, e.Reason)
	}
	return true
}

func blackouts(ctx context.Context, s *Subject, now time.Time, d *Decision) bool {
	if len(s.Blackouts) == 0 {
		return true
	}
	why, err := blackout.Stop(ctx, s.Blackouts, now, s.Policy.ExpectedRuntime)
	return windowAnswer(s, d, why, err, "")
}

// windowAnswer applies the job's policy to what blackout windows said (the
// host's, or with where "fleet" the fleet's): a window that cannot be
// evaluated is 78 (a warning under --gate-fail open), an open one a skip
// (a warning for a forced start).
func windowAnswer(s *Subject, d *Decision, why string, err error, where string) bool {
	if where != "" {
		if err != nil {
			err = fmt.Errorf("%s: %w", where, err)
		}
		if prefix, detail, ok := cutReason(why); ok {
			why = reason.F(prefix, "%s: %s", where, detail)
		}
	}
	switch {
	case err != nil && s.Policy.GateFailOpen:
		d.Warnings = append(d.Warnings, reason.F(reason.GateUnusable, "%v; running anyway (--gate-fail open)", err))
	case err != nil:
		return d.deny(exitcode.GateBad, reason.F(reason.GateUnusable, "%v", err))
	case why != "" && s.Force:
		d.Warnings = append(d.Warnings, why+"; running anyway (tickgate start --force)")
	case why != "":
		return d.deny(exitcode.Skipped, why)
	}
	return true
}

func fleetGate(ctx context.Context, s *Subject, now time.Time, d *Decision) bool {
	if s.Fleet == nil {
		return true
	}
	g, err := s.Fleet.Gate(ctx)
	if err != nil {
		return fleetDown(s, d, err)
	}
	if e := g.Evaluate(s.Job, now, s.Policy.ExpectedRuntime); !e.Allowed {
		// "gate-closed: fleet: deploy 42": the same prefixes, saying which gate.
		prefix, detail, _ := cutReason(e.Reason)
		why := reason.F(prefix, "fleet: %s", detail)
		if s.Force {
			d.Warnings = append(d.Warnings, why+"; running anyway (tickgate start --force)")
			return true
		}
		return d.deny(exitcode.Skipped, why)
	}
	return fleetBlackouts(ctx, s, now, d)
}

// fleetBlackouts asks the fleet's blackout windows that cover the job, as
// the blackout step asks the host's ("blackout: fleet: NAME until T").
func fleetBlackouts(ctx context.Context, s *Subject, now time.Time, d *Decision) bool {
	doc, err := s.Fleet.Blackouts(ctx)
	if err != nil {
		return fleetDown(s, d, err)
	}
	all, err := blackout.Parse(doc)
	if err != nil {
		return windowAnswer(s, d, "", fmt.Errorf("the fleet's blackout windows: %v", err), "fleet")
	}
	var why string
	if mine := blackout.Covering(all, s.Job, s.Lock); len(mine) > 0 {
		why, err = blackout.Stop(ctx, mine, now, s.Policy.ExpectedRuntime)
	}
	return windowAnswer(s, d, why, err, "fleet")
}

// Unreachable is the decision for a job whose fleet database cannot be
// asked (err says why), by the same rule as the fleet-gate step.
func Unreachable(s Subject, err error) Decision {
	d := Decision{Allowed: true}
	if !fleetDown(&s, &d, err) {
		d.Allowed, d.Step = false, FleetGate
	}
	return d
}

// fleetDown applies the job's policy to a fleet it cannot ask: a floating
// singleton and a fleet-scoped lock group never run without it; others
// follow --gate-fail.
func fleetDown(s *Subject, d *Decision, err error) bool {
	switch {
	case s.Singleton:
		return d.deny(exitcode.GateBad, reason.F(reason.FleetSlotUnavailable, "%v (a floating singleton never runs without its slot)", err))
	case s.FleetLock:
		return d.deny(exitcode.GateBad, reason.F(reason.FleetLockUnavailable, "%v (a fleet-scoped lock group never runs without its fleet lock)", err))
	case s.Policy.GateFailOpen:
		d.FleetDown = true
		d.Warnings = append(d.Warnings, reason.F(reason.FleetGateUnreachable, "%v", err)+"; running anyway (--gate-fail open)")
		return true
	}
	return d.deny(exitcode.GateBad, reason.F(reason.FleetGateUnreachable, "%v", err))
}

func cutReason(r string) (prefix, detail string, ok bool) {
	for i := 0; i+1 < len(r); i++ {
		if r[i] == ':' && r[i+1] == ' ' {
			return r[:i], r[i+2:], true
		}
	}
	return r, "", false
}

func backoffs(ctx context.Context, s *Subject, now time.Time, d *Decision) bool {
	if s.LockDir != "" && s.Lock != "" {
		b, err := backoff.Read(s.LockDir, s.Lock, s.Owners)
		if err != nil {
			return backoffUnusable(s, d, err)
		}
		if b.Active(now) {
			d.Backoff = b
			return d.deny(exitcode.Skipped, Why(b))
		}
	}
	if s.FleetLock && s.Fleet != nil && !d.FleetDown {
		b, err := s.Fleet.Backoff(ctx, s.Lock)
		if err != nil {
			return backoffUnusable(s, d, err)
		}
		if b.Active(now) {
			d.Backoff = b
			return d.deny(exitcode.Skipped, Why(b))
		}
	}
	return true
}

func backoffUnusable(s *Subject, d *Decision, err error) bool {
	if s.Policy.GateFailOpen {
		d.Warnings = append(d.Warnings, err.Error()+"; running anyway (--gate-fail open)")
		return true
	}
	return d.deny(exitcode.GateBad, reason.F(reason.GateUnusable, "%v", err))
}

// Why is the reason of a skip for b.
func Why(b *backoff.B) string {
	return reason.F(reason.Backoff, "lock group %s until %s: %s (set by %s)", b.Lock, b.Until.UTC().Format(time.RFC3339), b.Reason, b.SetBy)
}

func dependencies(ctx context.Context, s *Subject, now time.Time, d *Decision) bool {
	for _, q := range s.Requires {
		if q.Command != nil {
			continue
		}
		var last *time.Time
		var err error
		if q.Scope == require.Fleet {
			if s.Fleet == nil || d.FleetDown {
				return d.deny(exitcode.Skipped, require.Unknown(q, errors.New("the fleet database cannot be asked")))
			}
			last, err = s.Fleet.LastSuccess(ctx, q.Job)
		} else {
			var st *state.State
			if st, err = s.States.Load(q.Job); st != nil {
				last = st.LastSuccessAt
			}
		}
		if err != nil {
			// Not known: the job does not start on a guess.
			return d.deny(exitcode.Skipped, require.Unknown(q, err))
		}
		if why := require.Stale(q, last, now); why != "" {
			return d.deny(exitcode.Skipped, why)
		}
	}
	return true
}

func deadline(_ context.Context, s *Subject, now time.Time, d *Decision) bool {
	if s.StartDeadline <= 0 || s.Due == nil {
		return true
	}
	late := now.Sub(*s.Due)
	if late <= s.StartDeadline {
		return true
	}
	return d.deny(exitcode.Skipped, reason.F(reason.MissedDeadline, "due %s, %s late (start_deadline %s)",
		s.Due.Format(time.RFC3339), late.Round(time.Second), s.StartDeadline))
}
