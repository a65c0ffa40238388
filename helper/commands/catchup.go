package commands

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/admit"
	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/sysprog"
	"github.com/tickgate/tickgate/helper/systemd"
	"github.com/tickgate/tickgate/helper/timespec"
	"github.com/tickgate/tickgate/helper/voice"
)

// CatchUpUnit is the unit that runs `tickgate catch-up` in the background
// when an operator command reopens the gate (installed by the role).
const CatchUpUnit = systemd.UnitPrefix + "catch-up.service"

const catchUpHelp = `Runs, once each, the jobs with catch_up: once that the gate (closed, a pause,
a rollout window) skipped, now that it lets them start again: by starting
their units (systemctl start tickgate-JOB.service), never a job with a done
or halted marker, nor one the gate still stops.

Order and spacing: oldest missed run first; one job at a time per lock group
(the next starts when the previous has finished); different lock groups run
side by side, but two starts are always at least --spacing apart, so a
reopen never starts a burst of every job at once.

gate open, gate resume and gate rollout --clear start tickgate-catch-up.service,
which runs this, whenever a job owes a catch-up.`

func catchUpCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name:        "catch-up",
		Usage:       "run once each job the gate skipped (catch_up: once), now that it may start",
		UsageText:   "tickgate catch-up [--spacing DURATION] [--dry-run]",
		Description: catchUpHelp,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "spacing", Value: "2s", Usage: "at least `DURATION` between two starts"},
			&ucli.BoolFlag{Name: "dry-run", Usage: "print what would start, start nothing"},
			&ucli.StringFlag{Name: "start-with", Hidden: true, EnvVars: []string{"TICKGATE_CATCH_UP_START"},
				Usage: "an absolute `PROGRAM` that starts a unit and waits for it, instead of systemctl start (tests)"},
		},
		Action: func(c *ucli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			spacing, err := timespec.ParseDuration(c.String("spacing"))
			if err != nil {
				return exitcode.UsageError("--spacing: %v", err)
			}
			g := cli.GlobalsOf(c)
			owed, err := owedCatchUps(g)
			if err != nil {
				return exitcode.New(exitcode.Failure, "catch-up: %v", err)
			}
			if len(owed) == 0 {
				fmt.Fprintln(e.Stdout, "catch-up: no job owes a run")
				return nil
			}
			var starter []string
			if sw := c.String("start-with"); sw != "" {
				if starter = strings.Fields(sw); !filepath.IsAbs(starter[0]) {
					return exitcode.UsageError("--start-with: %q is not an absolute path", starter[0])
				}
			}
			return runCatchUps(c.Context, e, g, owed, spacing, starter, c.Bool("dry-run"))
		},
	}
}

// owed is a job that owes a catch-up.
type owed struct {
	job, lock string
	slot      time.Time
}

// owedCatchUps lists the jobs whose state says a catch-up is owed, oldest
// missed run first.
func owedCatchUps(g cli.Globals) ([]owed, error) {
	store := state.Store{Dir: g.StateDir, Owners: g.Owners}
	jobs, err := store.Jobs()
	if err != nil {
		return nil, err
	}
	var out []owed
	for _, j := range jobs {
		st, err := store.Load(j)
		if err != nil || st == nil || st.CatchUp == nil {
			continue
		}
		lock := st.Lock
		if lock == "" {
			lock = j
		}
		out = append(out, owed{job: j, lock: lock, slot: st.CatchUp.Slot})
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].slot.Before(out[b].slot) })
	return out, nil
}

func runCatchUps(ctx context.Context, e *cli.Env, g cli.Globals, jobs []owed, spacing time.Duration, starter []string, dry bool) error {
	store := state.Store{Dir: g.StateDir, Owners: g.Owners}
	groups := map[string][]owed{}
	var order []string
	for _, o := range jobs {
		if _, ok := groups[o.lock]; !ok {
			order = append(order, o.lock)
		}
		groups[o.lock] = append(groups[o.lock], o)
	}
	// One start at a time, at least spacing apart, whatever the group.
	var mu sync.Mutex
	var last time.Time
	gate := func() error {
		mu.Lock()
		defer mu.Unlock()
		if wait := time.Until(last.Add(spacing)); !last.IsZero() && wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		last = time.Now()
		return nil
	}
	var out sync.Mutex
	say := func(format string, a ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(e.Stdout, format+"\n", a...)
	}
	failed := 0
	var wg sync.WaitGroup
	for _, lock := range order {
		wg.Add(1)
		go func(list []owed) {
			defer wg.Done()
			for _, o := range list {
				j, err := store.Job(o.job, false)
				if err != nil {
					say("catch-up: job %s: %v", o.job, err)
					continue
				}
				// The host's checks (the unit's own tick asks the rest).
				sub := admit.Subject{Job: o.job, Dir: j, GatePath: g.Gate, Lock: o.lock, LockDir: g.LockDir, Owners: g.Owners}
				if sub.Blackouts, err = blackoutsOf(g, o.job, o.lock); err != nil {
					j.Close()
					say("catch-up: job %s not started: %v", o.job, err)
					continue
				}
				d := admit.Decide(ctx, sub, time.Now())
				j.Close()
				if !d.Allowed {
					say("catch-up: job %s not started: %s", o.job, d.Reason)
					continue
				}
				if dry {
					say("catch-up: would start %s (lock %s, missed run due %s)", unitOf(o.job), o.lock, o.slot.Format(time.RFC3339))
					continue
				}
				if err := gate(); err != nil {
					return
				}
				cmd, err := startUnit(ctx, starter, unitOf(o.job))
				if err != nil {
					say("catch-up: job %s not started: %v", o.job, err)
					out.Lock()
					failed++
					out.Unlock()
					continue
				}
				cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
				start := time.Now()
				err = cmd.Run()
				res := "its tick ended"
				if err != nil {
					res = "starting it failed: " + err.Error()
					out.Lock()
					failed++
					out.Unlock()
				}
				say("catch-up: started %s (lock %s, missed run due %s): %s after %s", unitOf(o.job), o.lock,
					o.slot.Format(time.RFC3339), res, time.Since(start).Round(time.Millisecond))
			}
		}(groups[lock])
	}
	wg.Wait()
	if failed > 0 {
		return exitcode.New(exitcode.Failure, "catch-up: %d job(s) could not be started", failed)
	}
	return nil
}

func unitOf(job string) string { return systemd.UnitPrefix + job + ".service" }

// triggerCatchUp starts the catch-up unit in the background when a job owes
// a catch-up, after an operator command reopened the gate. It only warns.
func triggerCatchUp(c *ucli.Context, e *cli.Env) {
	owed, err := owedCatchUps(cli.GlobalsOf(c))
	if err != nil || len(owed) == 0 {
		return
	}
	unit := os.Getenv("TICKGATE_CATCH_UP_UNIT")
	if _, set := os.LookupEnv("TICKGATE_CATCH_UP_UNIT"); !set {
		unit = CatchUpUnit
	}
	if unit == "" {
		fmt.Fprintf(e.Stdout, "catch-up: %d job(s) owe a run: run `tickgate catch-up`\n", len(owed))
		return
	}
	cmd, err := sysprog.Command(c.Context, "systemctl", "start", "--no-block", unit)
	var msg []byte
	if err == nil {
		msg, err = cmd.CombinedOutput()
	}
	if err != nil {
		voice.Warn(e.Stderr, "catch-up: %d job(s) owe a run, but starting %s failed (%v: %s); run `tickgate catch-up`",
			len(owed), unit, err, strings.TrimSpace(string(msg)))
		return
	}
	fmt.Fprintf(e.Stdout, "catch-up: %d job(s) owe a run: started %s\n", len(owed), unit)
}

// startUnit is the command that starts unit and waits for its tick:
// systemctl start, or the test's starter (an absolute program, given the
// helper's environment as a unit would have it).
func startUnit(ctx context.Context, starter []string, unit string) (*exec.Cmd, error) {
	if len(starter) == 0 {
		return sysprog.Command(ctx, "systemctl", "start", unit)
	}
	return exec.CommandContext(ctx, starter[0], append(starter[1:], unit)...), nil
}
