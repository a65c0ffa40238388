package commands

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/fleet"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/systemd"
	"github.com/tickgate/tickgate/helper/textsafe"
	"github.com/tickgate/tickgate/helper/voice"
)

// startPoll is how often `start --fleet --wait` reads its request.
const startPoll = 250 * time.Millisecond

// fleetStart is `tickgate start --fleet JOB`: a request in the fleet
// database, taken by one host whose timer of the floating singleton is
// armed (its tickgate-fleet-starts.timer asks every few seconds), which
// runs the job through its unit and reports how it went.
func fleetStart(c *ucli.Context, e *cli.Env, job string, force, wait bool, timeout time.Duration) error {
	g := cli.GlobalsOf(c)
	fc, err := fleetClient(c, g.FleetDSNFile)
	if err != nil {
		return err
	}
	defer fc.Close()
	host, err := operatorHost(c, fc)
	if err != nil {
		return err
	}
	id, err := fc.RequestStart(c.Context, host, job, force)
	if err != nil {
		return exitcode.New(exitcode.Failure, "job %s: %v", job, err)
	}
	if !wait {
		fmt.Fprintf(e.Stdout, "job %s: fleet start #%d requested; one host whose timer is armed takes it within seconds (tickgate start --fleet --wait follows it)\n", job, id)
		return nil
	}
	ctx := c.Context
	var limit <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		limit = t.C
	}
	spin := newSpinner(e.Stderr, fmt.Sprintf("job %s: fleet start #%d waiting for a host", job, id))
	defer spin.stop()
	poll := time.NewTicker(startPoll)
	defer poll.Stop()
	var last fleet.Start
	for {
		select {
		case <-limit:
			spin.stop()
			where := "no host has taken it yet"
			if last.TakenBy != "" {
				where = "it runs on host " + textsafe.Clean(last.TakenBy)
			}
			voice.Say(e.Stderr, "job %s: fleet start #%d not over after %s (%s); not waiting any longer", job, id, timeout, where)
			return exitcode.Silent(WaitTimedOut)
		case <-ctx.Done():
			spin.stop()
			return exitcode.New(exitcode.Failure, "job %s: stopped waiting for fleet start #%d (%v)", job, id, context.Cause(ctx))
		case <-spin.tick():
			spin.draw()
		case <-poll.C:
		}
		st, err := fc.StartOf(ctx, id)
		if err != nil {
			voice.Warn(e.Stderr, "job %s: %v (asking again)", job, err)
			continue
		}
		if st.TakenBy != "" && last.TakenBy == "" {
			spin.label = fmt.Sprintf("job %s: fleet start #%d running on %s", job, id, textsafe.Clean(st.TakenBy))
		}
		last = st
		switch {
		case st.Lapsed:
			spin.stop()
			return exitcode.New(exitcode.Failure, "job %s: fleet start #%d lapsed: no host took it within %s (is the job's timer armed on a host, and its tickgate-fleet-starts.timer?)", job, id, fleet.StartLapse)
		case st.FinishedAt == nil:
			continue
		}
		spin.stop()
		o := outcome{Invocation: st.Invocation, Result: st.Result, Reason: st.Reason, How: "exited", Took: time.Duration(st.Duration * float64(time.Second))}
		if st.ExitCode != nil {
			o.Exit = *st.ExitCode
		}
		fmt.Fprintf(e.Stdout, "job %s: ran on host %s: %s (fleet start #%d)\n", job, textsafe.Clean(st.TakenBy), o.line(), id)
		if o.Invocation != "" {
			fmt.Fprintf(e.Stdout, "output: on host %s, journalctl _SYSTEMD_INVOCATION_ID=%s\n", textsafe.Clean(st.TakenBy), textsafe.Clean(o.Invocation))
		}
		if o.Exit == 0 {
			return nil
		}
		return exitcode.Silent(o.Exit)
	}
}

// operatorHost is the host an operator's request acts for: --fleet-host
// (TICKGATE_FLEET_HOST), else this machine's hostname if the login role is
// mapped to it, else the one host the role is mapped to.
func operatorHost(c *ucli.Context, fc *fleet.Client) (string, error) {
	if h := c.String("fleet-host"); h != "" {
		return h, nil
	}
	hosts, err := fc.MappedHosts(c.Context)
	if err != nil {
		return "", exitcode.New(exitcode.GateBad, "%v", err)
	}
	name, _ := os.Hostname()
	for _, h := range hosts {
		if h == name {
			return h, nil
		}
	}
	if len(hosts) == 1 {
		return hosts[0], nil
	}
	return "", exitcode.UsageError("which fleet host is this? the tick role is mapped to %d hosts and none is named %q: give --fleet-host", len(hosts), name)
}

func takeStartsCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name:      "take-starts",
		Usage:     "run the fleet starts (tickgate start --fleet) that wait for this host's floating singletons",
		UsageText: "tickgate fleet take-starts",
		Description: `What tickgate-fleet-starts.timer runs every few seconds on a host with
floating singletons: for each floating singleton whose timer is armed on
this host, takes the oldest waiting fleet start (exactly one host gets
each), runs the job through its unit (as tickgate start does) and reports
how it went to the fleet database. Exits 0 when nothing waits.`,
		Action: func(c *ucli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return takeStarts(c, e)
		},
	}
}

func takeStarts(c *ucli.Context, e *cli.Env) error {
	g := cli.GlobalsOf(c)
	ctx := c.Context
	fc, err := fleetClient(c, g.FleetDSNFile)
	if err != nil {
		return err
	}
	defer fc.Close()
	host := c.String("fleet-host")
	if host == "" {
		host, _ = os.Hostname()
	}
	singletons, err := fc.Singletons(ctx)
	if err != nil {
		return exitcode.New(exitcode.GateBad, "%v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	timers, err := systemd.Timers(tctx)
	cancel()
	if timers == nil {
		return exitcode.New(exitcode.Failure, "fleet starts: %v", err)
	}
	failed := 0
	for _, job := range singletons {
		if t, ok := timers[job]; !ok || t.ActiveState != "active" {
			continue // not armed here
		}
		id, force, ok, err := fc.TakeStart(ctx, host, job)
		if err != nil {
			voice.Warn(e.Stderr, "job %s: %v", job, err)
			failed++
			continue
		}
		if !ok {
			continue
		}
		rep := runTaken(ctx, e, g, job, id, force)
		if err := fc.FinishStart(ctx, host, id, rep); err != nil {
			voice.Warn(e.Stderr, "job %s: %v", job, err)
			failed++
			continue
		}
		fmt.Fprintf(e.Stdout, "fleet start #%d: job %s: %s\n", id, job, outcome{Result: rep.Result, Reason: rep.Reason, Exit: *rep.ExitCode, How: "exited", Took: time.Duration(rep.Duration * float64(time.Second))}.line())
	}
	if failed > 0 {
		return exitcode.New(exitcode.Failure, "fleet starts: %d could not be taken or reported", failed)
	}
	return nil
}

// runTaken runs the job of fleet start id through its unit and says how it
// went (a start that could not be made is reported as such).
func runTaken(ctx context.Context, e *cli.Env, g cli.Globals, job string, id int64, force bool) fleet.Start {
	fail := func(result, why string) fleet.Start {
		code := exitcode.Failure
		return fleet.Start{Result: result, Reason: why, ExitCode: &code}
	}
	j, err := g.Store().Job(job, false)
	if errors.Is(err, fs.ErrNotExist) {
		return fail("not-started", "no state dir for the job on this host")
	}
	if err != nil {
		return fail("not-started", err.Error())
	}
	defer j.Close()
	s := starter{e: e, job: j, store: g.Store(), force: force, wait: true}
	u, _, done, err := s.launch(ctx, fmt.Sprintf("fleet start #%d", id))
	if err != nil {
		code, _ := exitcode.From(err)
		if code == exitcode.Skipped {
			return fleet.Start{Result: state.Skipped, Reason: "running already on this host", ExitCode: &code}
		}
		return fail("not-started", err.Error())
	}
	defer u.Close()
	res := <-done
	o, err := s.outcome(ctx, u, res)
	if err != nil {
		return fail("unknown", err.Error())
	}
	exit := o.Exit
	return fleet.Start{Invocation: o.Invocation, Result: o.Result, Reason: o.Reason, ExitCode: &exit, Duration: o.Took.Seconds()}
}
