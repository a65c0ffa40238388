package commands

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/admit"
	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/fleet"
	"github.com/tickgate/tickgate/helper/gate"
	"github.com/tickgate/tickgate/helper/require"
	"github.com/tickgate/tickgate/helper/runner"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/status"
	"github.com/tickgate/tickgate/helper/voice"
)

var forceFlag = &ucli.BoolFlag{Name: "force", Usage: "replace a gate file that does not parse"}

// fleetFlag makes a gate change apply to the fleet gate (every host).
var fleetFlag = &ucli.BoolFlag{Name: "fleet", Usage: "change the fleet gate (every host; the DSN in --fleet-admin-dsn-file)"}

func gateCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name:  "gate",
		Usage: "show or change the rollout gate (close all, pause one, announce a rollout)",
		Description: `The gate file (--gate, default /etc/tickgate/gate.json) is read by every
tick of every job. Changes are atomic and serialised, keep unknown fields,
the file's owner and its mode (0644 or stricter). TIME is RFC3339
(2026-11-23T18:00:00Z) or relative (+30m, "+1h 30min").`,
		Subcommands: []*ucli.Command{
			gateShowCommand(e),
			gateCloseCommand(e),
			gateOpenCommand(e),
			gatePauseCommand(e),
			gateResumeCommand(e),
			gateRolloutCommand(e),
			gateCheckCommand(e),
		},
	}
}

func gateShowCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name: "show", Usage: "print the gate state (this host's and the fleet's)", UsageText: "tickgate gate show [--json]",
		Description: `With a fleet DSN file (--fleet-dsn-file), the fleet gate too, and which
of the two stops jobs now (a job starts only if both allow it).
Example: tickgate gate show --json | jq .gate.paused`,
		Flags: []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "print JSON (the \"gate\" object of status --json, with \"fleet\" and \"stopped_by\")"}},
		Action: func(c *ucli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			now := time.Now()
			g := cli.GlobalsOf(c)
			v := status.ViewGate(g.Gate, now)
			if _, err := os.Stat(g.FleetDSNFile); err == nil {
				fv := fleetGateView(c, g.FleetDSNFile, now)
				v.Fleet = &fv
			}
			v.Blackouts = status.ViewBlackouts(c.Context, g.Gate, g.Owners, now)
			v.StoppedBy = stoppedBy(v)
			v.Backoffs = status.ActiveBackoffs(g.LockDir, g.Owners, now)
			if v.Fleet != nil {
				v.Backoffs = append(v.Backoffs, fleetBackoffs(c, g.FleetDSNFile, now)...)
			}
			if c.Bool("json") {
				if err := printJSON(e.Stdout, v); err != nil {
					return err
				}
			} else {
				printGate(e.Stdout, v, now)
				if v.Fleet != nil {
					fmt.Fprint(e.Stdout, "fleet ")
					printGate(e.Stdout, *v.Fleet, now)
					fmt.Fprintf(e.Stdout, "stops jobs: %s\n", orNone(v.StoppedBy))
				}
				printBackoffs(e.Stdout, v.Backoffs, now)
			}
			for _, view := range []*status.GateView{&v, v.Fleet} {
				if view != nil && view.State == "unusable" {
					return exitcode.New(exitcode.GateBad, "%s", view.Error)
				}
			}
			return nil
		},
	}
}

// fleetBackoffs are the fleet lock groups that back off now (read with the
// tick role; a failure shows as the fleet gate's).
func fleetBackoffs(c *ucli.Context, dsnFile string, now time.Time) []backoff.B {
	fc, err := fleetClient(c, dsnFile)
	if err != nil {
		return nil
	}
	defer fc.Close()
	all, err := fc.Backoffs(c.Context)
	if err != nil {
		return nil
	}
	var out []backoff.B
	for _, b := range all {
		if b.Active(now) {
			b.Fleet = true
			out = append(out, b)
		}
	}
	return out
}

// stoppedBy names the gates whose closure stops every job now.
func stoppedBy(v status.GateView) []string {
	var by []string
	for _, x := range []struct {
		name string
		view *status.GateView
	}{{"host", &v}, {"fleet", v.Fleet}} {
		if x.view != nil && (x.view.State == "closed" || x.view.State == "unusable") {
			by = append(by, x.name)
		}
	}
	return by
}

func gateCloseCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name: "close", Usage: "close the gate for every job", UsageText: "tickgate gate close --reason TEXT [--token T] [--until TIME] [--force]",
		Description: `A gate that is already closed stays closed as it is (its reason and token
are kept), so a deploy never takes over an operator's closure.
Example: tickgate gate close --reason "db failover" --until +2h`,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "reason", Usage: "why (required)"},
			&ucli.StringFlag{Name: "token", Usage: "`T` lets `gate open --token T` reopen only this closure"},
			&ucli.StringFlag{Name: "until", Usage: "the closure lapses at `TIME`"},
			forceFlag, fleetFlag,
		},
		Action: func(c *ucli.Context) error {
			reason, err := required(c, "reason")
			if err != nil {
				return err
			}
			now := time.Now().UTC()
			var until *time.Time
			if c.String("until") != "" {
				if until, err = timeFlag(c, "until", now); err != nil {
					return err
				}
				if until.Before(now.Add(time.Second)) {
					return exitcode.UsageError("--until %s: %s is not in the future (a closure must last at least 1s)", c.String("until"), until.Format(time.RFC3339Nano))
				}
			}
			if err := noArgs(c); err != nil {
				return err
			}
			msg := ""
			if err := changeGate(c, func(g *gate.Gate) error {
				if g.ClosedNow(now) {
					msg = fmt.Sprintf("gate already closed (reason %q, token %q); left as it is", g.Reason, g.Token)
					return nil
				}
				g.Closed, g.Reason, g.Token, g.Since, g.Until = true, reason, c.String("token"), &now, until
				msg = fmt.Sprintf("gate closed: %s", reason)
				return nil
			}); err != nil {
				return err
			}
			fmt.Fprintln(e.Stdout, msg)
			return nil
		},
	}
}

func gateOpenCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name: "open", Usage: "reopen the gate", UsageText: "tickgate gate open [--token T] [--force]",
		Description: `With --token, reopens only a closure made with that same token and says
which happened; exits 0 either way.
Example: tickgate gate open --token deploy-20261123T1000`,
		Flags: []ucli.Flag{&ucli.StringFlag{Name: "token", Usage: "reopen only a closure made with token `T`"}, forceFlag, fleetFlag},
		Action: func(c *ucli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			token := c.String("token")
			msg, opened := "", false
			if err := changeGate(c, func(g *gate.Gate) error {
				switch {
				case !g.Closed:
					msg = "gate already open"
					return errUnchanged
				case c.IsSet("token") && g.Token != token:
					msg = fmt.Sprintf("gate left closed: it was closed with token %q, not %q (reason %q)", g.Token, token, g.Reason)
					return errUnchanged
				}
				msg, opened = fmt.Sprintf("gate opened (was closed: %s)", g.Reason), true
				g.Closed, g.Reason, g.Token, g.Since, g.Until = false, "", "", nil, nil
				return nil
			}); err != nil {
				return err
			}
			fmt.Fprintln(e.Stdout, msg)
			if opened {
				triggerCatchUp(c, e)
			}
			return nil
		},
	}
}

func gatePauseCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name: "pause", Usage: "pause jobs (they skip until resumed)", UsageText: "tickgate gate pause JOB... --reason TEXT",
		Description: "Example: tickgate gate pause --reason \"API quota\" harvest backfill",
		Flags:       []ucli.Flag{&ucli.StringFlag{Name: "reason", Usage: "why (required)"}, forceFlag, fleetFlag},
		Action: func(c *ucli.Context) error {
			reason, err := required(c, "reason")
			if err != nil {
				return err
			}
			jobs, err := jobArgs(c)
			if err != nil {
				return err
			}
			now := time.Now().UTC()
			if err := changeGate(c, func(g *gate.Gate) error {
				for _, j := range jobs {
					g.Paused[j] = gate.Pause{Reason: reason, Since: now}
				}
				return nil
			}); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "paused: %s\n", strings.Join(jobs, " "))
			return nil
		},
	}
}

func gateResumeCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name: "resume", Usage: "resume paused jobs", UsageText: "tickgate gate resume JOB... | --all",
		Description: "Example: tickgate gate resume harvest",
		Flags:       []ucli.Flag{&ucli.BoolFlag{Name: "all", Usage: "resume every paused job"}, forceFlag, fleetFlag},
		Action: func(c *ucli.Context) error {
			var jobs []string
			if !c.Bool("all") {
				var err error
				if jobs, err = jobArgs(c); err != nil {
					return err
				}
			} else if c.Args().Present() {
				return exitcode.UsageError("give JOB names or --all, not both")
			}
			var resumed, notPaused []string
			if err := changeGate(c, func(g *gate.Gate) error {
				if c.Bool("all") {
					jobs = g.PausedJobs()
				}
				for _, j := range jobs {
					if _, ok := g.Paused[j]; ok {
						delete(g.Paused, j)
						resumed = append(resumed, j)
					} else {
						notPaused = append(notPaused, j)
					}
				}
				if len(resumed) == 0 {
					return errUnchanged
				}
				return nil
			}); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "resumed: %s\n", orNone(resumed))
			if len(notPaused) > 0 {
				fmt.Fprintf(e.Stdout, "were not paused: %s\n", strings.Join(notPaused, " "))
			}
			if len(resumed) > 0 {
				triggerCatchUp(c, e)
			}
			return nil
		},
	}
}

func gateRolloutCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name: "rollout", Usage: "announce (or clear) a rollout window", UsageText: "tickgate gate rollout --at TIME [--reason TEXT] | --clear",
		Description: `Jobs run with --expected-runtime D skip while the rollout starts before
now + D; jobs without one ignore the window. Clear it when the rollout is over.
Example: tickgate gate rollout --at 2026-11-23T18:00:00Z --reason "release 4.2"`,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "at", Usage: "the rollout starts at `TIME`"},
			&ucli.StringFlag{Name: "reason", Usage: "what is rolled out"},
			&ucli.BoolFlag{Name: "clear", Usage: "remove the announcement"},
			forceFlag, fleetFlag,
		},
		Action: func(c *ucli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			clear := c.Bool("clear")
			if clear == c.IsSet("at") {
				return exitcode.UsageError("give exactly one of --at TIME or --clear")
			}
			var at *time.Time
			if !clear {
				var err error
				if at, err = timeFlag(c, "at", time.Now()); err != nil {
					return err
				}
			}
			if err := changeGate(c, func(g *gate.Gate) error {
				g.RolloutAt, g.RolloutReason = at, c.String("reason")
				return nil
			}); err != nil {
				return err
			}
			if clear {
				fmt.Fprintln(e.Stdout, "rollout announcement cleared")
				triggerCatchUp(c, e)
			} else {
				fmt.Fprintf(e.Stdout, "rollout announced at %s\n", at.Format(time.RFC3339))
			}
			return nil
		},
	}
}

func gateCheckCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name: "check", Usage: "exit 0 if JOB may start now, 75 if not", UsageText: "tickgate gate check [--expected-runtime D] [--gate-fail closed|open] [--lock NAME] [--lock-scope host|fleet] [--fleet] [JOB]",
		Description: `For long jobs to call between batches and stop cleanly at a checkpoint,
and for operators. The answer a tick gets, from the same ordered checks
(docs/operating.md, "Reasons"): its done and halted markers, the host gate (closed, the
job paused, a rollout window within --expected-runtime), the fleet gate, the
lock group's back-off; 75 when one says no, 78 when the gate or the fleet
cannot be asked under --gate-fail closed.
Inside a job (run by tickgate run: $TICKGATE_CONTROL_FD), the job's own
supervisor answers, with the tick's flags and its fleet connection. As an
operator, JOB's lock group and fleet flags come from its state.json (as its
latest tick ran), unless given; JOB defaults to $TICKGATE_JOB.
Example (in a job's loop): tickgate gate check || exit 3`,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "expected-runtime", Usage: "the next batch's `DURATION`, for the rollout window (default: the job's own)"},
			&ucli.StringFlag{Name: "gate-fail", EnvVars: []string{"TICKGATE_GATE_FAIL"}, Usage: "an unusable gate file means `closed` (78) or open (0, with a warning) (default: the job's own)"},
			&ucli.StringFlag{Name: "lock", Usage: "the job's lock group `NAME` (default: as its latest tick ran)"},
			&ucli.StringFlag{Name: "lock-scope", Usage: "`host` or fleet (default: as its latest tick ran)"},
			&ucli.BoolFlag{Name: "fleet", Usage: "ask the fleet gate too (default: as its latest tick ran)"},
		},
		Action: func(c *ucli.Context) error {
			job := c.Args().First()
			own := os.Getenv("TICKGATE_JOB")
			if job == "" {
				job = own
			}
			if job == "" {
				return exitcode.UsageError("no JOB given and TICKGATE_JOB is not set")
			}
			if c.NArg() > 1 {
				return exitcode.UsageError("one JOB at most")
			}
			if err := checkJobName(job); err != nil {
				return err
			}
			var expected *time.Duration
			if c.IsSet("expected-runtime") {
				d, err := cli.DurationFlag(c, "expected-runtime")
				if err != nil {
					return exitcode.UsageError("%v", err)
				}
				expected = &d
			}
			if job == own && os.Getenv("TICKGATE_CONTROL_FD") != "" && !c.IsSet("lock") && !c.IsSet("lock-scope") && !c.IsSet("fleet") {
				ans, err := askCheck(expected)
				if err == nil {
					return checkAnswer(e, job, ans)
				}
				voice.Warn(e.Stderr, "job %s: its supervisor could not be asked (%v); answering from what this process can read", job, err)
			}
			return localCheck(c, e, job, expected)
		},
	}
}

// checkAnswer prints the answer and gives its exit code.
func checkAnswer(e *cli.Env, job string, a *runner.Check) error {
	if !a.Allowed {
		return exitcode.New(a.Code, "job %s: %s", job, a.Reason)
	}
	for _, w := range a.Warnings {
		voice.Warn(e.Stderr, "job %s: %s", job, w)
	}
	return nil
}

// localCheck answers as an operator (or a job whose supervisor cannot be
// asked): the job's flags from its state.json unless given, the fleet with
// the tick role's DSN when the job uses it.
func localCheck(c *ucli.Context, e *cli.Env, job string, expected *time.Duration) error {
	g := cli.GlobalsOf(c)
	j, err := g.Store().Job(job, false)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return exitcode.New(exitcode.GateBad, "job %s: %v", job, err)
	}
	var st *state.State
	if j != nil {
		defer j.Close()
		st, _ = j.Load() // unreadable: the flags' defaults (the markers still count)
	}
	s := admit.Subject{Job: job, Dir: j, GatePath: g.Gate, Lock: job, LockDir: g.LockDir, Owners: g.Owners}
	if st != nil && st.Lock != "" && state.ValidName("lock", st.Lock) == nil {
		s.Lock = st.Lock
	}
	var fleetOn bool
	if st != nil && st.Admission != nil {
		a := st.Admission
		s.Policy = admit.Policy{ExpectedRuntime: time.Duration(a.ExpectedRuntime * float64(time.Second)), GateFailOpen: a.GateFailOpen}
		fleetOn, s.FleetLock, s.Singleton = a.Fleet, a.LockScope == "fleet", a.Singleton
		if a.Requires != "" {
			// (Written by its tick, which parsed it: unreadable is none.)
			s.Requires, _ = require.Parse(a.Requires)
		}
	}
	s.States = g.Store()
	if c.IsSet("lock") {
		if err := state.ValidName("lock", c.String("lock")); err != nil {
			return exitcode.UsageError("--lock: %v", err)
		}
		s.Lock = c.String("lock")
	}
	if c.IsSet("lock-scope") {
		switch c.String("lock-scope") {
		case "host":
			s.FleetLock = false
		case "fleet":
			s.FleetLock, fleetOn = true, true
		default:
			return exitcode.UsageError("--lock-scope: %q is neither host nor fleet", c.String("lock-scope"))
		}
	}
	if c.IsSet("fleet") {
		fleetOn = c.Bool("fleet")
	}
	if c.IsSet("gate-fail") {
		if s.Policy.GateFailOpen, err = cli.GateFailFlag(c); err != nil {
			return exitcode.UsageError("%v", err)
		}
	}
	if expected != nil {
		s.Policy.ExpectedRuntime = *expected
	}
	if fleetOn {
		f := &operatorFleet{c: c, file: g.FleetDSNFile}
		defer f.close()
		s.Fleet = f
	}
	if s.Blackouts, err = blackoutsOf(g, job, s.Lock); err != nil {
		return exitcode.New(exitcode.GateBad, "job %s: %v", job, err)
	}
	d := admit.Decide(c.Context, s, time.Now())
	return checkAnswer(e, job, &runner.Check{Allowed: d.Allowed, Step: d.Step, Code: d.Code, Reason: d.Reason, Warnings: d.Warnings})
}

// operatorFleet is the fleet database as an operator's gate check asks it
// (the tick role's DSN, connected on first use).
type operatorFleet struct {
	c    *ucli.Context
	file string
	fc   *fleet.Client
	err  error
}

func (f *operatorFleet) client() (*fleet.Client, error) {
	if f.fc == nil && f.err == nil {
		f.fc, f.err = fleetClient(f.c, f.file)
	}
	return f.fc, f.err
}

func (f *operatorFleet) Gate(ctx context.Context) (*gate.Gate, error) {
	fc, err := f.client()
	if err != nil {
		return nil, err
	}
	return fc.Gate(ctx)
}

func (f *operatorFleet) Backoff(ctx context.Context, lock string) (*backoff.B, error) {
	fc, err := f.client()
	if err != nil {
		return nil, err
	}
	return fc.Backoff(ctx, lock)
}

func (f *operatorFleet) LastSuccess(ctx context.Context, job string) (*time.Time, error) {
	fc, err := f.client()
	if err != nil {
		return nil, err
	}
	return fc.LastSuccess(ctx, job)
}

func (f *operatorFleet) Blackouts(ctx context.Context) ([]byte, error) {
	fc, err := f.client()
	if err != nil {
		return nil, err
	}
	return fc.Blackouts(ctx)
}

func (f *operatorFleet) close() {
	if f.fc != nil {
		f.fc.Close()
	}
}

// errUnchanged, returned by a gate change, means there is nothing to write.
var errUnchanged = errors.New("unchanged")

// changeGate applies fn to the gate file (gate.Update: serialised, atomic,
// --force replaces a malformed file), or with --fleet to the fleet gate (one
// transaction, the admin role), and maps its errors to exit codes.
func changeGate(c *ucli.Context, fn func(*gate.Gate) error) error {
	if c.Bool("fleet") {
		fc, err := fleetClient(c, cli.GlobalsOf(c).FleetAdminDSNFile)
		if err != nil {
			return err
		}
		defer fc.Close()
		if err := fc.UpdateGate(c.Context, fn); err != nil && !errors.Is(err, errUnchanged) {
			return exitcode.New(exitcode.GateBad, "fleet gate: %v", err)
		}
		return nil
	}
	err := gate.Update(c.Context, cli.GlobalsOf(c).Gate, c.Bool("force"), fn)
	if err != nil && !errors.Is(err, errUnchanged) {
		return gateWriteErr(err)
	}
	return nil
}

func gateWriteErr(err error) error {
	var p *gate.Problem
	if errors.Is(err, gate.ErrMalformed) || errors.As(err, &p) {
		return exitcode.New(exitcode.GateBad, "%v", err)
	}
	return exitcode.New(exitcode.Software, "%v", err)
}
