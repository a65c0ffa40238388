// Package cli is tickgate's command line: the global flags, the run
// command, flag parsing, help texts, and the mapping of every failure to an
// exitcode.Error. It never exits the process. What else a program has is
// its main's to wire (Wiring): tickgate adds the operator commands (package
// commands), the fleet and the notifier; tickgate-tick adds nothing and
// hands the ticks that need them to tickgate.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/runner"
	"github.com/tickgate/tickgate/helper/safefs"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/textsafe"
	"github.com/tickgate/tickgate/helper/timespec"
)

// Version is set at build time with -ldflags "-X .../cli.Version=...".
var Version = "dev"

// Wiring is what a program's main puts on the command line beside run.
type Wiring struct {
	// Commands are the operator commands (nil: run alone, as in
	// tickgate-tick).
	Commands func(*Env) []*ucli.Command
	// Runner is what a tick may reach beyond the host (nil fields: none).
	Runner runner.Deps
	// HandOff, when set, may replace this process with a program that has
	// what a tick needs and this one lacks (HandOffToFull); it returns nil
	// when the tick is to run here.
	HandOff func(cfg runner.Config, args []string) error
}

// Run runs the command line args (args[0] is the program name).
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, w Wiring) error {
	app := newApp(args, stdin, stdout, stderr, w)
	return app.RunContext(ctx, interspersed(app, args))
}

// Env is what a command reads and writes.
type Env struct {
	Args  []string // as given, for a tick handed to the full helper
	Stdin io.Reader
	// Stdout and Stderr are the operator commands': every unsafe rune
	// escaped (textsafe.Writer). A tick's command inherits the raw streams.
	Stdout, Stderr       io.Writer
	RawStdout, RawStderr io.Writer
}

// Globals are the flags every command shares.
type Globals struct {
	StateDir, LockDir, Gate, MetricsDir, DataDir string
	Owners                                       *safefs.Owners
	FleetDSNFile, FleetAdminDSNFile              string
	NotifyDir                                    string
}

// GlobalsOf reads the global flags.
func GlobalsOf(c *ucli.Context) Globals {
	return Globals{
		StateDir:   c.String("state-dir"),
		LockDir:    c.String("lock-dir"),
		Gate:       c.String("gate"),
		MetricsDir: c.String("metrics-dir"),
		DataDir:    c.String("data-dir"),
		Owners:     safefs.NewOwners(c.String("supervisor")),

		FleetDSNFile:      c.String("fleet-dsn-file"),
		NotifyDir:         c.String("notify-dir"),
		FleetAdminDSNFile: c.String("fleet-admin-dsn-file"),
	}
}

// checkGlobals refuses an empty path where tickgate keeps its facts: an
// empty --state-dir would put job state in the working directory.
func checkGlobals(c *ucli.Context) error {
	for _, f := range []string{"state-dir", "lock-dir", "gate"} {
		if strings.TrimSpace(c.String(f)) == "" {
			return exitcode.UsageError("--%s must not be empty", f)
		}
	}
	return nil
}

func usageErr(_ *ucli.Context, err error, _ bool) error {
	return exitcode.UsageError("%v (see --help)", err)
}

func newApp(args []string, stdin io.Reader, stdout, stderr io.Writer, w Wiring) *ucli.App {
	e := &Env{Args: args, Stdin: stdin, Stdout: textsafe.Writer{W: stdout}, Stderr: textsafe.Writer{W: stderr},
		RawStdout: stdout, RawStderr: stderr}
	app := &ucli.App{
		Name: "tickgate",
		// Shown by no help text; left zero, urfave/cli stats os.Args[0] for
		// it on every run.
		Compiled: time.Unix(0, 0).UTC(),
		Usage:    "run periodic jobs under lock groups, a rollout gate and persistent markers",
		Version:  Version,
		// Calendar expressions (--schedule) contain commas: a repeated flag
		// is a list, a comma is not a separator.
		DisableSliceFlagSeparator: true,
		Description: `tickgate is the ExecStart of every tickgate-JOB.service unit and the
operator's tool for the gate, drains and status. Global flags can also be set
through the environment variables shown, as the units do with Environment=.`,
		Flags: []ucli.Flag{
			// TICKGATE_STATE_ROOT is the state dir everywhere. TICKGATE_STATE_DIR
			// is read too, as units before 0.2 set it; inside a job it names
			// the job's own data dir, but TICKGATE_STATE_ROOT is set there
			// and read first.
			&ucli.StringFlag{Name: "state-dir", Value: "/var/lib/tickgate", EnvVars: []string{"TICKGATE_STATE_ROOT", "TICKGATE_STATE_DIR"}, Usage: "job state and markers live in `DIR`/JOB/"},
			&ucli.StringFlag{Name: "lock-dir", Value: "/run/lock/tickgate", EnvVars: []string{"TICKGATE_LOCK_DIR"}, Usage: "lock group files `DIR`/NAME.lock"},
			&ucli.StringFlag{Name: "gate", Value: "/etc/tickgate/gate.json", EnvVars: []string{"TICKGATE_GATE"}, Usage: "the gate `FILE`"},
			&ucli.StringFlag{Name: "metrics-dir", EnvVars: []string{"TICKGATE_METRICS_DIR"}, Usage: "write Prometheus textfiles to `DIR` (empty: none)"},
			&ucli.StringFlag{Name: "data-dir", Value: "/var/lib/tickgate-data", EnvVars: []string{"TICKGATE_DATA_ROOT"}, Usage: "each job's own writable dir is `DIR`/JOB (TICKGATE_DATA_DIR in the job)"},
			&ucli.StringFlag{Name: "supervisor", Value: "tickgate", EnvVars: []string{"TICKGATE_SUPERVISOR"}, Usage: "the `ACCOUNT` that owns tickgate's directories (trusted beside root)"},
			&ucli.StringFlag{Name: "notify-dir", Value: "/etc/tickgate/notify", EnvVars: []string{"TICKGATE_NOTIFY_DIR"}, Usage: "a job's notification targets are in `DIR`/JOB.json (the deploy writes them; 0600)"},
			&ucli.StringFlag{Name: "fleet-dsn-file", Value: "/etc/tickgate/fleet-tick.dsn", EnvVars: []string{"TICKGATE_FLEET_DSN_FILE"}, Usage: "the tick role's fleet DSN is in `FILE` (run --fleet, gate show)"},
			&ucli.StringFlag{Name: "fleet-admin-dsn-file", Value: "/etc/tickgate/fleet-admin.dsn", EnvVars: []string{"TICKGATE_FLEET_ADMIN_DSN_FILE"}, Usage: "the admin role's fleet DSN is in `FILE` (gate ... --fleet)"},
			&ucli.StringFlag{Name: "fleet-timeout", Value: "3s", EnvVars: []string{"TICKGATE_FLEET_TIMEOUT"}, Usage: "bound connecting to the fleet database and each query to `DURATION`"},
			&ucli.StringFlag{Name: "fleet-host", EnvVars: []string{"TICKGATE_FLEET_HOST"}, Usage: "this host's `NAME` in the fleet (default: the hostname)"},
			&ucli.BoolFlag{Name: "fleet-insecure", EnvVars: []string{"TICKGATE_FLEET_INSECURE"}, Usage: "accept a fleet DSN whose sslmode is below verify-full"},
			&ucli.StringFlag{Name: "fleet-max-skew", Value: "5s", EnvVars: []string{"TICKGATE_FLEET_MAX_SKEW"}, Usage: "a tick fails when this host's clock is further than `DURATION` from the fleet database's"},
			&ucli.StringFlag{Name: "fleet-lease-ttl", Value: "30s", EnvVars: []string{"TICKGATE_FLEET_LEASE_TTL"}, Usage: "a fleet lock's lease lasts `DURATION` without a renewal (the unit's WatchdogSec= is a sixth of it)"},
		},
		Before:          checkGlobals,
		Reader:          stdin,
		Writer:          e.Stdout,
		ErrWriter:       e.Stderr,
		HideHelpCommand: true,
		OnUsageError:    usageErr,
		ExitErrHandler:  func(*ucli.Context, error) {}, // main alone exits
		Commands: []*ucli.Command{
			runCommand(e, w),
		},
	}
	if w.Commands != nil {
		app.Commands = append(app.Commands, w.Commands(e)...)
	}
	for _, c := range app.Commands {
		configure(c)
	}
	cacheAllNames(app)
	app.CommandNotFound = func(c *ucli.Context, name string) {}
	app.Action = func(c *ucli.Context) error {
		if c.Args().Present() {
			return unknownCommand(c.Args().First(), w.Commands == nil)
		}
		return exitcode.UsageError("no command given (see tickgate --help)")
	}
	return app
}

// configure gives every command our usage-error mapping and removes the
// "help"/"h" subcommand urfave/cli would add: with it, a job named "h" or
// "help" would print help instead of running (--help still works).
func configure(c *ucli.Command) {
	c.OnUsageError = usageErr
	c.HideHelpCommand = true
	for _, s := range c.Subcommands {
		configure(s)
	}
}

// parseCodes parses a comma list of exit codes such as "0,3".
func parseCodes(flag, s string) (map[int]bool, error) {
	set := map[int]bool{}
	s = strings.TrimSpace(s)
	if s == "" {
		return set, nil
	}
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 0 || n > 255 {
			return nil, fmt.Errorf("--%s: %q is not an exit code (0-255) in the comma list %q", flag, part, s)
		}
		if why, ok := exitcode.Reserved[n]; ok {
			return nil, fmt.Errorf("--%s: exit code %d is tickgate's own (%s); a job's command must not use it", flag, n, why)
		}
		set[n] = true
	}
	return set, nil
}

// DurationFlag parses a string flag as a systemd/Go time span.
func DurationFlag(c *ucli.Context, flag string) (time.Duration, error) {
	d, err := timespec.ParseDuration(c.String(flag))
	if err != nil {
		return 0, fmt.Errorf("--%s: %v", flag, err)
	}
	return d, nil
}

// asUsage turns a plain error into a usage error, leaving coded ones alone.
func asUsage(err error) error {
	var e *exitcode.Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	return exitcode.UsageError("%v", err)
}

// App is the command tree w makes, with no input or output, for
// documentation generated from it (helper/manpage).
func App(w Wiring) *ucli.App {
	return newApp([]string{"tickgate"}, strings.NewReader(""), io.Discard, io.Discard, w)
}

// Store is the jobs' state under --state-dir.
func (g Globals) Store() state.Store { return state.Store{Dir: g.StateDir, Owners: g.Owners} }
