package cli

import (
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/blackout"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/require"
	"github.com/tickgate/tickgate/helper/runner"
	"github.com/tickgate/tickgate/helper/state"
)

const runHelp = `Runs COMMAND with exactly that argv (no shell), unless a check says not to.
Checks, in order: the done/halted markers, the host gate (closed, job paused,
rollout window), the fleet gate (--fleet), the lock group's back-off, the
start deadline; then the lock group (host, then fleet with --lock-scope fleet)
and the same checks again with it held. A skip never runs the command.

The command inherits stdin/stdout/stderr and, on fd 4, a socket to its
supervisor (TICKGATE_CONTROL_FD: tickgate backoff, tickgate gate check); its
environment is tickgate's unit environment, the job's own variables
(--env-file), and TICKGATE_JOB, TICKGATE_LOCK, TICKGATE_RUN_ID,
TICKGATE_DATA_DIR (its own writable dir, for a checkpoint cursor),
TICKGATE_STATE_ROOT and TICKGATE_GATE.

Durations take systemd time spans ("90s", "5min", "1h 30m"; bare number = s).

Exit codes:
  0    the command ran and its code was an ok or done code
  1    the command's code was 0 or 75 but not an ok or done code
  75   skipped: a marker, the gate, a pause, a rollout window, a back-off,
       a missed deadline, the lock busy (units set SuccessExitStatus=75)
  78   the gate file or the fleet is unusable (--gate-fail closed)
  64   usage error (nothing run, nothing written)
  70   tickgate could not record the outcome (state/metrics not writable)
  126, 127  the command could not be started (not executable, not found)
  N    the command's own code when it is a failure or a halt code
  128+N the command, or tickgate, was ended by signal N

Examples:
  tickgate run harvest -- /opt/jobs/harvest --since yesterday
  tickgate run --lock api --ok-codes 3 --done-codes 0 --halt-codes 4 --halt-after 1 \
      backfill -- /opt/jobs/backfill --batch 500`

func runCommand(e *Env, w Wiring) *ucli.Command {
	return &ucli.Command{
		Name:        "run",
		Usage:       "run a job's command under its lock group, the gate and its markers",
		UsageText:   "tickgate run [flags] JOB -- COMMAND [ARG...]",
		Description: runHelp,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "lock", Usage: "lock group `NAME` (default: JOB); jobs sharing a lock never overlap"},
			&ucli.IntFlag{Name: "lock-slots", Value: 1, Usage: "at most `N` runs of the lock group at once on this host"},
			&ucli.StringFlag{Name: "lock-wait", Value: "0", Usage: "wait up to `DURATION` for a busy lock (0: skip at once)"},
			&ucli.StringFlag{Name: "ok-codes", Value: "0", Usage: "comma `LIST` of exit codes meaning success"},
			&ucli.StringFlag{Name: "done-codes", Usage: "comma `LIST` of exit codes meaning drained: write the done marker"},
			&ucli.StringFlag{Name: "halt-codes", Usage: "comma `LIST` of exit codes that write the halted marker"},
			&ucli.IntFlag{Name: "halt-after", Usage: "write the halted marker after `N` consecutive failures (0: never)"},
			&ucli.StringFlag{Name: "retry-codes", Usage: "comma `LIST` of exit codes that are tried again within the tick (with --retries)"},
			&ucli.IntFlag{Name: "retries", Usage: "at most `N` more attempts for a retry code (0: none)"},
			&ucli.StringFlag{Name: "retry-delay", Value: "10s", Usage: "wait `DURATION` before the first retry; doubled per attempt, with jitter"},
			&ucli.StringFlag{Name: "retry-max-delay", Value: "0", Usage: "cap the wait between attempts at `DURATION` (0: 16 x --retry-delay)"},
			&ucli.StringFlag{Name: "expected-runtime", Value: "0", Usage: "skip when an announced rollout starts within `DURATION`"},
			&ucli.StringFlag{Name: "timeout", Value: "0", Usage: "SIGTERM the command's process group after `DURATION` (0: none)"},
			&ucli.StringFlag{Name: "kill-after", Value: "10s", Usage: "SIGKILL the process group `DURATION` after SIGTERM"},
			&ucli.StringFlag{Name: "gate-fail", Value: "closed", Usage: "an unusable gate file means `closed` (exit 78) or open (run, warn)"},
			&ucli.StringFlag{Name: "user", Usage: "run the command as `USER` (name or uid); tickgate itself stays the supervisor"},
			&ucli.StringFlag{Name: "group", Usage: "the command's primary `GROUP` (default: the user's)"},
			&ucli.StringFlag{Name: "workdir", Usage: "the command's working `DIR` (entered as the job's user)"},
			&ucli.StringFlag{Name: "env-file", Usage: "the job's own variables, a JSON object in `FILE` (root's or the supervisor's, 0600): the command's environment only"},
			&ucli.BoolFlag{Name: "fleet", Usage: "also obey the fleet gate (the DSN in --fleet-dsn-file)"},
			&ucli.StringFlag{Name: "lock-scope", Value: "host", Usage: "`host`, or fleet: hold the lock group fleet-wide too (implies --fleet)"},
			&ucli.StringFlag{Name: "singleton", Usage: "`fleet`: each slot of --schedule runs on one host of the fleet only (implies --fleet)"},
			&ucli.StringSliceFlag{Name: "schedule", Usage: "the timer's OnCalendar= `EXPR` (repeat for each): when a tick was due, for --singleton, --start-deadline, --catch-up"},
			&ucli.IntFlag{Name: "history", Value: state.DefaultHistory, Usage: "keep the last `N` runs in state.json (tickgate history)"},
			&ucli.StringFlag{Name: "start-deadline", Value: "0", Usage: "skip a run that would start more than `DURATION` after its scheduled time (0: never)"},
			&ucli.StringFlag{Name: "catch-up", Value: "none", Usage: "`once`: after the gate skipped it, run once when the gate reopens (tickgate catch-up)"},
			&ucli.StringFlag{Name: "catch-up-on", Value: "gate", Usage: "`WHAT` skips owe a catch-up: gate, or gate,precondition"},
			&ucli.StringFlag{Name: "blackouts", Usage: "recurring windows the job does not start in, a JSON list of {name, calendar, duration} (`JSON`)"},
			&ucli.StringFlag{Name: "requires", Usage: "preconditions, a JSON list of {command: [argv], timeout} and {job, succeeded_within, scope} (`JSON`)"},
		},
		Action: func(c *ucli.Context) error {
			cfg, err := runConfig(c, e)
			if err != nil {
				return asUsage(err)
			}
			if w.HandOff != nil {
				if err := w.HandOff(cfg, e.Args); err != nil {
					return err
				}
			}
			out, err := runner.Run(cfg, w.Runner)
			if err != nil {
				return exitcode.New(exitcode.Software, "%v", err)
			}
			if out.ExitCode != 0 {
				return exitcode.Silent(out.ExitCode)
			}
			return nil
		},
	}
}

func runConfig(c *ucli.Context, e *Env) (runner.Config, error) {
	g := GlobalsOf(c)
	args := c.Args().Slice()
	if len(args) == 0 {
		return runner.Config{}, fmt.Errorf("missing JOB: usage: tickgate run [flags] JOB -- COMMAND [ARG...]")
	}
	job := args[0]
	if len(args) < 2 || args[1] != "--" {
		if slices.Contains(args, "--") {
			return runner.Config{}, fmt.Errorf("job %s: unexpected argument %q before -- (one JOB, then -- COMMAND)", job, args[1])
		}
		return runner.Config{}, fmt.Errorf("job %s: missing -- between JOB and COMMAND", job)
	}
	argv := args[2:]
	lock := c.String("lock")
	if lock == "" {
		lock = job
	}
	cfg := runner.Config{
		Job: job, Lock: lock, Argv: argv,
		StateDir: g.StateDir, LockDir: g.LockDir, GatePath: g.Gate, MetricsDir: g.MetricsDir,
		DataDir: g.DataDir, Owners: g.Owners, WorkDir: c.String("workdir"), NotifyDir: g.NotifyDir, EnvFile: c.String("env-file"),
		HaltAfter: c.Int("halt-after"),
		Env:       os.Environ(), Stdin: e.Stdin, Stdout: e.RawStdout, Stderr: e.RawStderr,
	}
	var err error
	for _, d := range []struct {
		flag string
		dst  *runner.Codes
	}{{"ok-codes", &cfg.OK}, {"done-codes", &cfg.Done}, {"halt-codes", &cfg.Halt}} {
		if *d.dst, err = parseCodes(d.flag, c.String(d.flag)); err != nil {
			return cfg, fmt.Errorf("job %s: %v", job, err)
		}
	}
	if cfg.Retry, err = parseCodes("retry-codes", c.String("retry-codes")); err != nil {
		return cfg, fmt.Errorf("job %s: %v", job, err)
	}
	cfg.Retries = c.Int("retries")
	cfg.LockSlots = c.Int("lock-slots")
	for _, d := range []struct {
		flag string
		dst  *time.Duration
	}{{"lock-wait", &cfg.LockWait}, {"expected-runtime", &cfg.ExpectedRuntime}, {"timeout", &cfg.Timeout}, {"kill-after", &cfg.KillAfter},
		{"retry-delay", &cfg.RetryDelay}, {"retry-max-delay", &cfg.RetryMaxDelay}} {
		if *d.dst, err = DurationFlag(c, d.flag); err != nil {
			return cfg, fmt.Errorf("job %s: %v", job, err)
		}
	}
	switch c.String("lock-scope") {
	case "host":
	case "fleet":
		cfg.Fleet = &runner.FleetConfig{LockScope: true}
	default:
		return cfg, fmt.Errorf("job %s: --lock-scope: %q is neither host nor fleet", job, c.String("lock-scope"))
	}
	if c.Bool("fleet") && cfg.Fleet == nil {
		cfg.Fleet = &runner.FleetConfig{}
	}
	cfg.History = c.Int("history")
	cfg.Schedule = c.StringSlice("schedule")
	if cfg.StartDeadline, err = DurationFlag(c, "start-deadline"); err != nil {
		return cfg, fmt.Errorf("job %s: %v", job, err)
	}
	switch c.String("catch-up") {
	case "", "none":
	case "once":
		cfg.CatchUp = true
	default:
		return cfg, fmt.Errorf("job %s: --catch-up: %q is neither none nor once", job, c.String("catch-up"))
	}
	for _, w := range strings.Split(c.String("catch-up-on"), ",") {
		switch strings.TrimSpace(w) {
		case "gate":
		case "precondition":
			cfg.CatchUpOnPrecondition = true
		default:
			return cfg, fmt.Errorf("job %s: --catch-up-on: %q is neither gate nor precondition", job, w)
		}
	}
	if t := c.String("blackouts"); t != "" {
		if cfg.Blackouts, err = blackout.Parse([]byte(t)); err != nil {
			return cfg, fmt.Errorf("job %s: --blackouts: %v", job, err)
		}
	}
	if t := c.String("requires"); t != "" {
		cfg.RequiresText = t
		if cfg.Requires, err = require.Parse(t); err != nil {
			return cfg, fmt.Errorf("job %s: %v", job, err)
		}
	}
	switch c.String("singleton") {
	case "":
	case "fleet":
		if cfg.Fleet == nil {
			cfg.Fleet = &runner.FleetConfig{}
		}
		cfg.Fleet.Singleton = true
	default:
		return cfg, fmt.Errorf("job %s: --singleton: %q is not fleet (a host-pinned singleton needs no flag: the deploy arms it on one host)", job, c.String("singleton"))
	}
	if cfg.Fleet != nil {
		cfg.Fleet.DSNFile = g.FleetDSNFile
		if cfg.Fleet.Host = c.String("fleet-host"); cfg.Fleet.Host == "" {
			cfg.Fleet.Host, _ = os.Hostname()
		}
		if cfg.Fleet.Timeout, err = DurationFlag(c, "fleet-timeout"); err != nil {
			return cfg, fmt.Errorf("job %s: %v", job, err)
		}
		if cfg.Fleet.MaxSkew, err = DurationFlag(c, "fleet-max-skew"); err != nil {
			return cfg, fmt.Errorf("job %s: %v", job, err)
		}
		if cfg.Fleet.LeaseTTL, err = DurationFlag(c, "fleet-lease-ttl"); err != nil {
			return cfg, fmt.Errorf("job %s: %v", job, err)
		}
		cfg.Fleet.Insecure = c.Bool("fleet-insecure")
	}
	if cfg.Cred, err = credential(c.String("user"), c.String("group")); err != nil {
		return cfg, fmt.Errorf("job %s: %v", job, err)
	}
	if cfg.GateFailOpen, err = GateFailFlag(c); err != nil {
		return cfg, fmt.Errorf("job %s: %v", job, err)
	}
	return cfg, cfg.Validate()
}

// credential resolves --user/--group (names or numbers) the way systemd's
// User=/Group= do: the user's primary group unless --group, and the user's
// supplementary groups from /etc/group. Nil when neither is given.
func credential(userArg, groupArg string) (*runner.Credential, error) {
	if userArg == "" && groupArg == "" {
		return nil, nil
	}
	if userArg == "" {
		return nil, fmt.Errorf("--group needs --user")
	}
	u, err := user.Lookup(userArg)
	if err != nil {
		if _, nerr := strconv.ParseUint(userArg, 10, 32); nerr != nil {
			return nil, fmt.Errorf("--user: %v", err)
		}
		if u, err = user.LookupId(userArg); err != nil {
			// A bare uid with no passwd entry, as systemd's User= allows:
			// its own group, no supplementary groups, HOME=/.
			u = &user.User{Uid: userArg, Gid: userArg, Username: userArg, HomeDir: "/"}
		}
	}
	cr := &runner.Credential{Name: u.Username, Home: u.HomeDir}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("--user %s: uid %q: %v", userArg, u.Uid, err)
	}
	gidStr := u.Gid
	if groupArg != "" {
		g, err := user.LookupGroup(groupArg)
		if err != nil {
			if _, nerr := strconv.ParseUint(groupArg, 10, 32); nerr != nil {
				return nil, fmt.Errorf("--group: %v", err)
			}
			if g, err = user.LookupGroupId(groupArg); err != nil {
				g = &user.Group{Gid: groupArg} // a bare gid, as Group= allows
			}
		}
		gidStr = g.Gid
	}
	gid, err := strconv.ParseUint(gidStr, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("--group: gid %q: %v", gidStr, err)
	}
	cr.UID, cr.GID = uint32(uid), uint32(gid)
	ids, err := u.GroupIds()
	if err != nil && u.Username != userArg {
		return nil, fmt.Errorf("--user %s: supplementary groups: %v", userArg, err)
	}
	for _, id := range ids {
		if n, err := strconv.ParseUint(id, 10, 32); err == nil {
			cr.Groups = append(cr.Groups, uint32(n))
		}
	}
	if cr.SelfExecutable, err = os.Executable(); err != nil {
		return nil, fmt.Errorf("locating tickgate itself: %v", err)
	}
	return cr, nil
}

// GateFailFlag reads --gate-fail: true for open.
func GateFailFlag(c *ucli.Context) (bool, error) {
	switch v := c.String("gate-fail"); v {
	case "closed":
		return false, nil
	case "open":
		return true, nil
	default:
		return false, fmt.Errorf("--gate-fail: %q is neither closed nor open", v)
	}
}
