// The helpers every command shares: flag and argument checks, the job an
// operator names, printing (JSON, times, gates, clipped text).
package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/blackout"
	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/fleet"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/status"
	"github.com/tickgate/tickgate/helper/textsafe"
	"github.com/tickgate/tickgate/helper/timespec"
)

func required(c *ucli.Context, flag string) (string, error) {
	v := strings.TrimSpace(c.String(flag))
	if v == "" {
		return "", exitcode.UsageError("--%s is required and must not be empty", flag)
	}
	return v, nil
}

func noArgs(c *ucli.Context) error {
	if c.Args().Present() {
		return exitcode.UsageError("unexpected argument %q", c.Args().First())
	}
	return nil
}

func jobArgs(c *ucli.Context) ([]string, error) {
	jobs := c.Args().Slice()
	if len(jobs) == 0 {
		return nil, exitcode.UsageError("give at least one JOB")
	}
	for _, j := range jobs {
		if err := checkJobName(j); err != nil {
			return nil, err
		}
	}
	return jobs, nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, " ")
}

// printJSON prints v indented, with the runes encoding/json leaves raw that
// a terminal would obey escaped (textsafe.EscapeJSON): the same JSON value.
func printJSON(w io.Writer, v any) error {
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(textsafe.EscapeJSON(out), '\n'))
	return err
}

// timeFlag parses a TIME flag (RFC3339 or +DURATION from now), in UTC.
func timeFlag(c *ucli.Context, flag string, now time.Time) (*time.Time, error) {
	t, err := timespec.ParseTime(c.String(flag), now)
	if err != nil {
		return nil, exitcode.UsageError("--%s: %v", flag, err)
	}
	t = t.UTC()
	return &t, nil
}

// fmtTime is an absolute time with its distance from now.
func fmtTime(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339) + " (" + short(t, now) + ")"
}

func printGate(w io.Writer, v status.GateView, now time.Time) {
	if v.State == "unusable" {
		fmt.Fprintf(w, "gate: UNUSABLE: %s\n", textsafe.Clean(v.Error))
		return
	}
	g := v.Gate
	switch {
	case v.State == "closed":
		fmt.Fprintf(w, "gate: closed: %s\n", orDash(textsafe.Clean(g.Reason)))
		fmt.Fprintf(w, "  since: %s  until: %s  token: %s\n", fmtTime(g.Since, now), fmtTime(g.Until, now), orDash(textsafe.Clean(g.Token)))
	case g.Closed:
		fmt.Fprintf(w, "gate: open (closure %q lapsed %s)\n", g.Reason, fmtTime(g.Until, now))
	default:
		fmt.Fprintln(w, "gate: open")
	}
	if g.RolloutAt != nil {
		note := ""
		if g.RolloutAt.Before(now) {
			note = "  [past: jobs with --expected-runtime skip until `tickgate gate rollout --clear`]"
		}
		fmt.Fprintf(w, "  rollout: %s %s%s\n", fmtTime(g.RolloutAt, now), textsafe.Clean(g.RolloutReason), note)
	}
	for _, j := range g.PausedJobs() {
		p := g.Paused[j]
		fmt.Fprintf(w, "  paused: %s: %s (since %s)\n", textsafe.Clean(j), orDash(textsafe.Clean(p.Reason)), fmtTime(&p.Since, now))
	}
	printBlackouts(w, v.Blackouts, now)
}

// printBlackouts lists the blackout windows: each with what it stops, and
// its opening in force or its next one.
func printBlackouts(w io.Writer, bs []status.BlackoutView, now time.Time) {
	for _, b := range bs {
		var what []string
		if b.All {
			what = append(what, "all jobs")
		}
		if len(b.Locks) > 0 {
			what = append(what, "lock groups "+strings.Join(b.Locks, " "))
		}
		if len(b.Jobs) > 0 {
			what = append(what, "jobs "+strings.Join(b.Jobs, " "))
		}
		head := fmt.Sprintf("  blackout %s: %s for %s (%s)", textsafe.Clean(b.Name), textsafe.Clean(b.Calendar), b.Duration, orDash(strings.Join(what, ", ")))
		switch {
		case b.Error != "":
			fmt.Fprintf(w, "%s: ERROR: %s\n", head, textsafe.Clean(b.Error))
		case b.Open:
			fmt.Fprintf(w, "%s: OPEN until %s\n", head, fmtTime(b.End, now))
		case b.Start != nil:
			fmt.Fprintf(w, "%s: next %s\n", head, fmtTime(b.Start, now))
		default:
			fmt.Fprintf(w, "%s: never again\n", head)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// short is a time's distance from now: "in 5m0s", "2h0m0s ago", "now".
func short(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	d := t.Sub(now).Round(time.Second)
	if d == 0 {
		return "now"
	}
	if d > 0 {
		return "in " + d.String()
	}
	return (-d).String() + " ago"
}

// clip is text from a job, a state file or the fleet for a table cell:
// escaped (textsafe.Clean: one line, nothing a terminal obeys), cut to n
// bytes on a rune boundary.
func clip(s string, n int) string {
	s = textsafe.Clean(s)
	if len(s) <= n {
		return s
	}
	cut := n - 1
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// knownJob opens the one JOB argument's state dir; a job without one is a
// usage error.
func knownJob(c *ucli.Context, g cli.Globals) (*state.Job, error) {
	if c.NArg() != 1 {
		return nil, exitcode.UsageError("give exactly one JOB")
	}
	name := c.Args().First()
	if err := checkJobName(name); err != nil {
		return nil, err
	}
	j, err := g.Store().Job(name, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, exitcode.UsageError("unknown job %q: no %s", name, g.Store().JobDir(name))
	}
	if err != nil {
		return nil, exitcode.New(exitcode.Software, "job %s: %v", name, err)
	}
	return j, nil
}

// blackoutsOf are the host's blackout windows (the file beside the gate
// file) that apply to job of lock group lock.
func blackoutsOf(g cli.Globals, job, lock string) ([]blackout.Window, error) {
	all, err := blackout.Load(g.Gate, g.Owners)
	if err != nil {
		return nil, err
	}
	return blackout.Covering(all, job, lock), nil
}

func checkJobName(job string) error {
	if err := state.ValidName("job", job); err != nil {
		return exitcode.UsageError("%v", err)
	}
	return nil
}

// fleetClient connects to the fleet database with the DSN in file.
func fleetClient(c *ucli.Context, file string) (*fleet.Client, error) {
	t, err := cli.DurationFlag(c, "fleet-timeout")
	if err != nil {
		return nil, exitcode.UsageError("%v", err)
	}
	dsn, err := fleet.ReadDSN(file, cli.GlobalsOf(c).Owners)
	if err != nil {
		return nil, exitcode.New(exitcode.GateBad, "%v", err)
	}
	host, _ := os.Hostname()
	fc, err := fleet.Connect(c.Context, fleet.Options{DSN: dsn, Timeout: t, Insecure: c.Bool("fleet-insecure"), AppName: "tickgate " + host + " operator"})
	if err != nil {
		return nil, exitcode.New(exitcode.GateBad, "%v", err)
	}
	return fc, nil
}

// fleetGateView reads the fleet gate with the tick role's DSN.
func fleetGateView(c *ucli.Context, dsnFile string, now time.Time) status.GateView {
	fc, err := fleetClient(c, dsnFile)
	if err != nil {
		return status.GateView{State: "unusable", Exists: true, Error: "fleet gate: " + err.Error()}
	}
	defer fc.Close()
	fg, err := fc.Gate(c.Context)
	if err != nil {
		return status.GateView{State: "unusable", Exists: true, Error: "fleet gate: " + err.Error()}
	}
	bs := fleetBlackoutViews(c.Context, fc, now)
	st := "open"
	if fg.ClosedNow(now) {
		st = "closed"
	}
	return status.GateView{State: st, Exists: true, Gate: fg, Blackouts: bs}
}

// fleetBlackoutViews are the fleet's blackout windows (as the last Gate
// read them), each with its opening in force or its next one.
func fleetBlackoutViews(ctx context.Context, fc *fleet.Client, now time.Time) []status.BlackoutView {
	doc, err := fc.Blackouts(ctx)
	if err != nil {
		return []status.BlackoutView{{Window: blackout.Window{Name: "?"}, Error: err.Error()}}
	}
	ws, err := blackout.Parse(doc)
	if err != nil {
		return []status.BlackoutView{{Window: blackout.Window{Name: "?"}, Error: "the fleet's blackout windows: " + err.Error()}}
	}
	return status.ViewWindows(ctx, ws, now)
}
