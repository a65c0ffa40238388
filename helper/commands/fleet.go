package commands

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/blackout"
	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/fleet"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/status"
	"github.com/tickgate/tickgate/helper/textsafe"
)

func fleetCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name:  "fleet",
		Usage: "fleet database chores (the deploy runs them)",
		Subcommands: []*ucli.Command{{
			Name:      "migrate",
			Usage:     "bring the fleet schema to this helper's version and grant the tick role",
			UsageText: "tickgate fleet migrate [--tick-role ROLE] [--register JSON] [--check]",
			Description: `With the admin role's DSN (--fleet-admin-dsn-file). Idempotent, and safe
when several deploys run it at once; refuses a schema newer than this helper.
With --check it changes nothing: exit 0 when the schema is this helper's
version and the tick role holds its grants, 1 (saying what) when a migrate
would do anything. The deploy's first step reopens the gate itself only then.
--register maps each host of the play to the login role its ticks connect as
(only that role may act for the host) and registers each floating
singleton's schedule: {"hosts": {"HOST": "ROLE"}, "singletons": {"JOB":
{"schedule": SHA256, "interval": SECONDS}}} (the deploy computes it).
Example: tickgate fleet migrate --tick-role tickgate_tick --register '{"hosts": {"web1": "tickgate_tick_web1"}}'`,
			Flags: []ucli.Flag{
				&ucli.StringFlag{Name: "tick-role", Value: "tickgate_tick", Usage: "the `ROLE` ticks connect as"},
				&ucli.StringFlag{Name: "register", Usage: "the hosts' login roles and the floating singletons' schedules, as `JSON`"},
				&ucli.BoolFlag{Name: "check", Usage: "change nothing; exit 1 when a migrate would do anything"},
			},
			Action: func(c *ucli.Context) error {
				if err := noArgs(c); err != nil {
					return err
				}
				g := cli.GlobalsOf(c)
				t, err := cli.DurationFlag(c, "fleet-timeout")
				if err != nil {
					return exitcode.UsageError("%v", err)
				}
				reg, err := parseRegistration(c.String("register"))
				if err != nil {
					return exitcode.UsageError("--register: %v", err)
				}
				dsn, err := fleet.ReadDSN(g.FleetAdminDSNFile, g.Owners)
				if err != nil {
					return exitcode.New(exitcode.GateBad, "%v", err)
				}
				insecure := c.Bool("fleet-insecure")
				if c.Bool("check") {
					pending, err := fleet.Pending(c.Context, fleet.Options{DSN: dsn, Timeout: t, Insecure: insecure, AppName: "tickgate migrate --check"}, c.String("tick-role"), reg)
					if err != nil {
						return exitcode.New(exitcode.GateBad, "%v", err)
					}
					if len(pending) > 0 {
						return exitcode.New(exitcode.Failure, "fleet schema: a migrate is needed: %s", strings.Join(pending, "; "))
					}
					fmt.Fprintf(e.Stdout, "fleet schema up to date (version %d), role %s granted\n", fleet.SchemaVersion, c.String("tick-role"))
					return nil
				}
				applied, err := fleet.Migrate(c.Context, fleet.Options{DSN: dsn, Timeout: t, Insecure: insecure, AppName: "tickgate migrate"}, c.String("tick-role"), reg)
				if err != nil {
					return exitcode.New(exitcode.Failure, "%v", err)
				}
				if len(applied) == 0 {
					fmt.Fprintf(e.Stdout, "fleet schema up to date (version %d)\n", fleet.SchemaVersion)
					return nil
				}
				parts := make([]string, len(applied))
				for i, v := range applied {
					parts[i] = fmt.Sprint(v)
				}
				fmt.Fprintf(e.Stdout, "fleet schema migrated to version %d (applied %s)\n", fleet.SchemaVersion, strings.Join(parts, ", "))
				return nil
			},
		}, takeStartsCommand(e)},
	}
}

// parseRegistration reads --register's JSON (empty: nothing to register).
func parseRegistration(doc string) (fleet.Registration, error) {
	var reg fleet.Registration
	if strings.TrimSpace(doc) == "" {
		return reg, nil
	}
	var raw struct {
		Hosts      map[string]string `json:"hosts"`
		Singletons map[string]struct {
			Schedule string  `json:"schedule"`
			Interval float64 `json:"interval"`
		} `json:"singletons"`
		Blackouts *[]json.RawMessage `json:"blackouts"`
	}
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return reg, fmt.Errorf("not the JSON expected ({\"hosts\": {HOST: ROLE}, \"singletons\": {JOB: {\"schedule\", \"interval\"}}, \"blackouts\": [WINDOW]}): %v", err)
	}
	reg.Hosts = raw.Hosts
	for host, role := range raw.Hosts {
		if err := state.ValidName("lock", host); err != nil || role == "" || len(role) > 63 {
			return reg, fmt.Errorf("host %q as role %q: a host name ([A-Za-z0-9][A-Za-z0-9_.@-]*) and a role name (1-63 characters)", host, role)
		}
	}
	reg.Singletons = map[string]fleet.Singleton{}
	for job, sg := range raw.Singletons {
		if err := state.ValidName("job", job); err != nil {
			return reg, err
		}
		if len(sg.Schedule) != 64 || sg.Interval <= 0 {
			return reg, fmt.Errorf("floating singleton %s: a schedule hash (64 hex digits) and an interval in seconds", job)
		}
		reg.Singletons[job] = fleet.Singleton{Schedule: sg.Schedule, Interval: sg.Interval}
	}
	if raw.Blackouts != nil {
		// Each window as the ticks will read it, checked now: a window the
		// helper cannot read would stop every job it names with 78.
		reg.Blackouts = []json.RawMessage{}
		for _, w := range *raw.Blackouts {
			if _, err := blackout.Parse(append(append([]byte("["), w...), ']')); err != nil {
				return reg, fmt.Errorf("blackouts: %v", err)
			}
			reg.Blackouts = append(reg.Blackouts, w)
		}
	}
	return reg, nil
}

// fleetStatus is `status --fleet --json`.
type fleetStatus struct {
	Schema      int       `json:"schema"`
	GeneratedAt time.Time `json:"generated_at"`
	// Skipped are records that do not parse as a tick's: named, and left
	// out, so that one bad row never hides the others.
	Skipped    []string           `json:"skipped,omitempty"`
	Gate       status.GateView    `json:"gate"`
	Hosts      []fleetHost        `json:"hosts"`
	Jobs       []fleetJob         `json:"jobs"`
	Locks      []fleet.LockHolder `json:"locks"`
	Singletons []fleet.Slot       `json:"singletons"` // each floating singleton's latest slot
}

type fleetHost struct {
	Host     string    `json:"host"`
	LastSeen time.Time `json:"last_seen"` // its latest published tick
	Jobs     int       `json:"jobs"`
}

type fleetJob struct {
	Host                string     `json:"host"`
	Job                 string     `json:"job"`
	Lock                string     `json:"lock"`
	Result              string     `json:"result"`
	Reason              string     `json:"reason"`
	ExitCode            *int       `json:"exit_code"`
	LastRun             *time.Time `json:"last_run"`
	LastSuccessAt       *time.Time `json:"last_success_at"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	Running             bool       `json:"running"`
	PID                 int        `json:"pid"`
	Done                bool       `json:"done"`
	Halted              bool       `json:"halted"`
	Fence               int64      `json:"fence,omitempty"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

func collectFleet(c *ucli.Context) (*fleetStatus, error) {
	g := cli.GlobalsOf(c)
	now := time.Now().UTC()
	fc, err := fleetClient(c, g.FleetDSNFile)
	if err != nil {
		return nil, err
	}
	defer fc.Close()
	fs := &fleetStatus{Schema: status.Schema, GeneratedAt: now, Hosts: []fleetHost{}, Jobs: []fleetJob{}}
	fs.Gate = fleetGateView(c, g.FleetDSNFile, now)
	recs, err := fc.Records(c.Context)
	if err != nil {
		return nil, exitcode.New(exitcode.Failure, "status --fleet: %v", err)
	}
	if fs.Locks, err = fc.Holders(c.Context); err != nil {
		return nil, exitcode.New(exitcode.Failure, "status --fleet: %v", err)
	}
	if fs.Locks == nil {
		fs.Locks = []fleet.LockHolder{}
	}
	if fs.Singletons, err = fc.Slots(c.Context); err != nil {
		return nil, exitcode.New(exitcode.Failure, "status --fleet: %v", err)
	}
	if fs.Singletons == nil {
		fs.Singletons = []fleet.Slot{}
	}
	hosts := map[string]*fleetHost{}
	for _, r := range recs {
		var p struct {
			state.State
			Running bool `json:"running"`
			Done    bool `json:"done"`
			Halted  bool `json:"halted"`
		}
		if err := json.Unmarshal(r.Record, &p); err != nil {
			fs.Skipped = append(fs.Skipped, fmt.Sprintf("host %s job %s: the record does not parse: %v", r.Host, r.Job, err))
			continue
		}
		j := fleetJob{Host: r.Host, Job: r.Job, Lock: p.Lock, Result: p.Result, Reason: p.Reason, ExitCode: p.ExitCode,
			LastSuccessAt: p.LastSuccessAt, ConsecutiveFailures: p.ConsecutiveFailures, Running: p.Running, PID: p.PID,
			Done: p.Done, Halted: p.Halted, UpdatedAt: r.UpdatedAt}
		if p.LastRun != nil {
			j.LastRun, j.Fence = p.LastRun.StartedAt, p.LastRun.Fence
		}
		fs.Jobs = append(fs.Jobs, j)
		h := hosts[r.Host]
		if h == nil {
			h = &fleetHost{Host: r.Host}
			hosts[r.Host] = h
		}
		h.Jobs++
		if r.UpdatedAt.After(h.LastSeen) {
			h.LastSeen = r.UpdatedAt
		}
	}
	for _, h := range hosts {
		fs.Hosts = append(fs.Hosts, *h)
	}
	sort.Slice(fs.Hosts, func(a, b int) bool { return fs.Hosts[a].Host < fs.Hosts[b].Host })
	return fs, nil
}

func printFleetStatus(w io.Writer, fs *fleetStatus) {
	now := fs.GeneratedAt
	fmt.Fprint(w, "fleet ")
	printGate(w, fs.Gate, now)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tLAST SEEN\tJOBS")
	for _, h := range fs.Hosts {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", textsafe.Clean(h.Host), short(&h.LastSeen, now), h.Jobs)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tJOB\tLAST RUN\tRESULT\tLAST SUCCESS\tFAILS\tMARKER\tRUNNING\tLOCK\tREASON")
	for _, j := range fs.Jobs {
		marker := "-"
		switch {
		case j.Halted:
			marker = "halted"
		case j.Done:
			marker = "done"
		}
		running := "-"
		if j.Running {
			running = fmt.Sprintf("pid %d", j.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", textsafe.Clean(j.Host), textsafe.Clean(j.Job), short(j.LastRun, now), orDash(textsafe.Clean(j.Result)),
			short(j.LastSuccessAt, now), j.ConsecutiveFailures, marker, running, textsafe.Clean(j.Lock), clip(orDash(j.Reason), 60))
	}
	tw.Flush()
	fmt.Fprintln(w)
	if len(fs.Locks) == 0 {
		fmt.Fprintln(w, "fleet locks: none held")
	} else {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FLEET LOCK\tHOST\tJOB\tPID\tSINCE\tLEASE UNTIL\tFENCE")
		for _, l := range fs.Locks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\n", textsafe.Clean(l.Group), textsafe.Clean(l.Host), textsafe.Clean(l.Job), l.PID,
				short(l.Since, now), short(l.LeaseUntil, now), l.Fence)
		}
		tw.Flush()
	}
	if len(fs.Singletons) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FLOATING SINGLETON\tLAST SLOT ENDS\tRAN ON\tCLAIMED")
	for _, s := range fs.Singletons {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", textsafe.Clean(s.Job), s.Slot.Format(time.RFC3339), textsafe.Clean(s.Host), short(&s.ClaimedAt, now))
	}
	tw.Flush()
}
