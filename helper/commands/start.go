package commands

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"time"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/systemd"
	"github.com/tickgate/tickgate/helper/textsafe"
	"github.com/tickgate/tickgate/helper/unitlog"
	"github.com/tickgate/tickgate/helper/voice"
)

// WaitTimedOut is what `tickgate start --wait --timeout D` exits with when the
// run outlasts D (timeout(1)'s code; the run goes on).
const WaitTimedOut = 124

// startOutputLines is how many of the run's last output lines --wait prints.
const startOutputLines = 100

func startCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name:      "start",
		Usage:     "run a job now, through its unit, and optionally wait for the result",
		UsageText: "tickgate start [--wait [--timeout DURATION]] [--force] [--fleet] JOB",
		Description: `Starts tickgate-JOB.service, as its timer would: the job's user, sandbox,
lock group, markers and gate apply exactly as for a timer's run, and a skip
is a skip (75) with its reason. The start is an operator's, not the
schedule's: it is never late (start_deadline) and owes no catch-up.
--force goes past a closed gate, a pause and a rollout window (host and
fleet), never past a lock group, a back-off or a marker. A job that runs
already is not started again (exit 75).
Without --wait, exits 0 once the run has begun, printing its invocation id.
With --wait, follows the run and prints its result, exit code, duration and
its last output lines (from the journal, by invocation id), then exits with
the run's exit code (0, 75 skipped, the job's own code); --timeout stops
waiting (exit 124) and leaves the run going. On a terminal a spinner shows
the elapsed time.
With --fleet, JOB is a floating singleton: the request goes to the fleet
database and runs once, on one host whose timer of JOB is armed (the host
that takes it, not this one); --wait reports where and how it went.
An operator's start of a floating singleton claims no slot: the timer's
runs go on as scheduled.
Example: tickgate start --wait backfill`,
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "wait", Usage: "follow the run and exit with its exit code"},
			&ucli.StringFlag{Name: "timeout", Value: "0", Usage: "with --wait: stop waiting after `DURATION` (0: wait for the end)"},
			&ucli.BoolFlag{Name: "force", Usage: "run even if the gate is closed or the job paused"},
			&ucli.BoolFlag{Name: "fleet", Usage: "a floating singleton: run it once, on one host of the fleet whose timer is armed"},
		},
		Action: func(c *ucli.Context) error {
			timeout, err := cli.DurationFlag(c, "timeout")
			if err != nil {
				return exitcode.UsageError("%v", err)
			}
			if timeout > 0 && !c.Bool("wait") {
				return exitcode.UsageError("--timeout needs --wait")
			}
			if c.Bool("fleet") {
				if c.NArg() != 1 {
					return exitcode.UsageError("give exactly one JOB")
				}
				if err := checkJobName(c.Args().First()); err != nil {
					return err
				}
				return fleetStart(c, e, c.Args().First(), c.Bool("force"), c.Bool("wait"), timeout)
			}
			g := cli.GlobalsOf(c)
			j, err := knownJob(c, g)
			if err != nil {
				return err
			}
			defer j.Close()
			s := starter{e: e, job: j, store: g.Store(), force: c.Bool("force"), wait: c.Bool("wait"), timeout: timeout}
			return s.run(c.Context)
		},
	}
}

type starter struct {
	e       *cli.Env
	job     *state.Job
	store   state.Store
	force   bool
	wait    bool
	timeout time.Duration
	early   string // systemd's result for the start, if it came before the run was seen to begin
}

func (s *starter) run(ctx context.Context) error {
	name := s.job.Name
	u, inv, done, err := s.launch(ctx, "")
	if err != nil {
		return err
	}
	defer u.Close()
	if !s.wait {
		if inv == "" {
			fmt.Fprintf(s.e.Stdout, "job %s: start queued (%s)\n", name, u.Name)
			return nil
		}
		fmt.Fprintf(s.e.Stdout, "job %s: started (invocation %s); follow it with journalctl _SYSTEMD_INVOCATION_ID=%s -f\n", name, inv, inv)
		return nil
	}
	result, err := s.follow(ctx, u, done)
	if err != nil {
		return err
	}
	return s.report(ctx, u, result)
}

// launch starts the job's unit with an operator's request (by names who
// asked; "" for this process' user): the unit, the run's invocation id (""
// if it was not seen to begin within 10 s) and the channel systemd answers
// the start on. A job that runs already is a skip (75), not started again.
func (s *starter) launch(ctx context.Context, by string) (*systemd.Unit, string, <-chan string, error) {
	name := s.job.Name
	u, err := systemd.OpenUnit(ctx, name)
	if err != nil {
		return nil, "", nil, exitcode.New(exitcode.Failure, "job %s: %v", name, err)
	}
	active, before, err := u.State(ctx)
	if err != nil {
		u.Close()
		return nil, "", nil, exitcode.New(exitcode.Failure, "job %s: %v", name, err)
	}
	if active == "activating" || active == "active" || active == "deactivating" || active == "reloading" {
		u.Close()
		voice.Say(s.e.Stderr, "job %s: running already (invocation %s); not started again", name, before)
		return nil, "", nil, exitcode.Silent(exitcode.Skipped)
	}
	if by == "" {
		by = whoAmI()
	}
	// The request tells the tick it is an operator's start (and forced or
	// not); the tick takes it as it begins.
	q := state.Request{At: time.Now().UTC(), Force: s.force, By: by}
	if err := s.job.Locked(ctx, func() error { return s.job.WriteRequest(q) }); err != nil {
		u.Close()
		return nil, "", nil, exitcode.New(exitcode.Software, "job %s: write start request: %v", name, err)
	}
	done, err := u.Start(ctx)
	if err != nil {
		_ = s.job.Locked(context.Background(), func() error { _, err := s.job.Dir.Remove(state.StartRequest); return err })
		u.Close()
		return nil, "", nil, exitcode.New(exitcode.Failure, "job %s: %v", name, err)
	}
	return u, s.begun(ctx, u, before, done), done, nil
}

// begun waits (up to 10 s) for the start to get an invocation id other than
// before's, and returns it ("" if none came: the start is still queued).
func (s *starter) begun(ctx context.Context, u *systemd.Unit, before string, done <-chan string) string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, inv, err := u.State(ctx)
		if err == nil && inv != "" && inv != before {
			return inv
		}
		if time.Now().After(deadline) {
			return ""
		}
		select {
		case r := <-done: // over already: follow takes its result from here
			s.early = r
			_, inv, _ = u.State(ctx)
			if inv != before {
				return inv
			}
			return ""
		case <-ctx.Done():
			return ""
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// follow waits for systemd's result of the start, showing a spinner on a
// terminal.
func (s *starter) follow(ctx context.Context, u *systemd.Unit, done <-chan string) (string, error) {
	var limit <-chan time.Time
	if s.timeout > 0 {
		t := time.NewTimer(s.timeout)
		defer t.Stop()
		limit = t.C
	}
	if s.early != "" {
		return s.early, nil
	}
	spin := newSpinner(s.e.Stderr, "job "+s.job.Name+": running")
	defer spin.stop()
	for {
		select {
		case r := <-done:
			return r, nil
		case <-limit:
			spin.stop()
			_, inv, _ := u.State(ctx)
			voice.Say(s.e.Stderr, "job %s: still running after %s; not waiting any longer (the run goes on: journalctl _SYSTEMD_INVOCATION_ID=%s -f)", s.job.Name, s.timeout, inv)
			return "", exitcode.Silent(WaitTimedOut)
		case <-ctx.Done():
			spin.stop()
			return "", exitcode.New(exitcode.Failure, "job %s: stopped waiting (%v); the run goes on", s.job.Name, context.Cause(ctx))
		case <-spin.tick():
			spin.draw()
		}
	}
}

// outcome is how a started run went: from the tick's own record (matched
// by invocation id), else systemd's word.
type outcome struct {
	Invocation string
	Result     string
	Reason     string
	Exit       int
	How        string // "exited", "killed", "dumped"
	Took       time.Duration
}

// outcome reads how the unit's latest run went; jobResult is systemd's
// result for the start.
func (s *starter) outcome(ctx context.Context, u *systemd.Unit, jobResult string) (outcome, error) {
	name := s.job.Name
	_, inv, err := u.State(ctx)
	if err != nil {
		return outcome{}, exitcode.New(exitcode.Failure, "job %s: %v", name, err)
	}
	ex, err := u.Exit(ctx)
	if err != nil {
		return outcome{}, exitcode.New(exitcode.Failure, "job %s: %v", name, err)
	}
	o := outcome{Invocation: inv, Exit: ex.Code, How: ex.How}
	if ex.Started != nil && ex.Finished != nil {
		o.Took = ex.Finished.Sub(*ex.Started)
	}
	if st, err := s.store.Load(name); err == nil && st != nil {
		switch {
		case inv != "" && st.Run.Invocation == inv:
			o.Result, o.Reason, o.Took = st.Result, st.Reason, time.Duration(st.DurationSeconds*float64(time.Second))
		case inv != "" && st.LastSkip != nil && st.LastSkip.Invocation == inv:
			o.Result, o.Reason, o.Took = state.Skipped, st.LastSkip.Reason, 0
		}
	}
	if o.Result == "" { // no record of this run: systemd's word only
		o.Result = "unit " + jobResult
		if ex.Code == exitcode.Skipped {
			o.Result = state.Skipped
		}
	}
	return o, nil
}

// line is the outcome as one line: "success, exit 0, 1.2s".
func (o outcome) line() string {
	line := textsafe.Clean(o.Result) // a fleet start's: another host's words
	if o.Reason != "" {
		line += " (" + textsafe.Clean(o.Reason) + ")"
	}
	line += fmt.Sprintf(", exit %d", o.Exit)
	if o.How != "exited" && o.How != "" {
		line += " (" + o.How + ")"
	}
	if o.Result != state.Skipped {
		line += ", " + o.Took.Round(time.Millisecond).String()
	}
	return line
}

// report prints the run's result, exit code, duration and output, and
// returns the exit code to leave with.
func (s *starter) report(ctx context.Context, u *systemd.Unit, jobResult string) error {
	name := s.job.Name
	o, err := s.outcome(ctx, u, jobResult)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.e.Stdout, "job %s: %s\n", name, o.line())
	if o.Invocation != "" && o.Result != state.Skipped {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		lines, err := unitlog.Lines(lctx, o.Invocation, startOutputLines)
		if err != nil {
			voice.Warn(s.e.Stderr, "job %s: the run's output not read from the journal: %v", name, err)
		}
		if len(lines) > 0 {
			fmt.Fprintf(s.e.Stdout, "output (invocation %s):\n", o.Invocation)
			for _, l := range lines {
				fmt.Fprintln(s.e.Stdout, "  "+textsafe.Clean(l))
			}
		}
	}
	if o.Exit == 0 {
		return nil
	}
	return exitcode.Silent(o.Exit)
}

// whoAmI names the operator for the request: the sudo user behind root,
// else this process's user.
func whoAmI() string {
	uid := strconv.Itoa(os.Getuid())
	name := uid
	if u, err := user.LookupId(uid); err == nil {
		name = u.Username
	}
	if su := os.Getenv("SUDO_USER"); su != "" && os.Getuid() == 0 {
		name = su + " (sudo)"
	}
	return textsafe.Clean(name)
}

// spinner shows "| job X: running 12s" on a terminal, redrawn in place.
type spinner struct {
	w       io.Writer
	label   string
	on      bool
	start   time.Time
	n       int
	ticker  *time.Ticker
	stopped bool
}

func newSpinner(w io.Writer, label string) *spinner {
	sp := &spinner{w: w, label: label, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			sp.on = true
			sp.ticker = time.NewTicker(100 * time.Millisecond)
		}
	}
	return sp
}

// tick is nil (never ready) off a terminal.
func (sp *spinner) tick() <-chan time.Time {
	if !sp.on || sp.stopped {
		return nil
	}
	return sp.ticker.C
}

func (sp *spinner) draw() {
	frames := `|/-\`
	sp.n++
	fmt.Fprintf(sp.w, "\r%c %s %s\x1b[K", frames[sp.n%len(frames)], sp.label, time.Since(sp.start).Round(time.Second))
}

func (sp *spinner) stop() {
	if !sp.on || sp.stopped {
		return
	}
	sp.stopped = true
	sp.ticker.Stop()
	fmt.Fprint(sp.w, "\r\x1b[K")
}
