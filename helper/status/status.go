// Package status joins what tickgate knows about each job — state.json,
// markers, process liveness, held group locks, the gate — with systemd's
// timers, for `tickgate status` and `tickgate drain`. It takes no lock and
// writes nothing, so it never makes a starting job skip.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/blackout"
	"github.com/tickgate/tickgate/helper/calendar"
	"github.com/tickgate/tickgate/helper/gate"
	"github.com/tickgate/tickgate/helper/lockgroup"
	"github.com/tickgate/tickgate/helper/safefs"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/systemd"
)

// Schema is the version of the JSON that `status --json` prints.
const Schema = 1

// Running is a job (or a lock group) with a live process.
type Running struct {
	Job            string     `json:"job"` // empty when only a held lock is known
	Lock           string     `json:"lock"`
	PID            int        `json:"pid"`
	StartedAt      *time.Time `json:"started_at"`
	RunningSeconds float64    `json:"running_seconds"`
	// Left says which processes of a run still hold its lock group after
	// its helper was killed or its command ended (PID is then their process
	// group).
	Left string `json:"left,omitempty"`
}

// FindRunning lists running jobs: a state record that says running with a
// live child or helper, any group lock held in lockDir (a run between lock
// and record), and any lock group whose holder record names processes that
// still run (a run whose helper was SIGKILLed, or that left processes
// behind: package lockgroup).
func FindRunning(store state.Store, lockDir string, now time.Time) ([]Running, error) {
	jobs, err := store.Jobs()
	if err != nil {
		return nil, err
	}
	var out []Running
	locks := map[string]int{} // running jobs by lock group (a group of N slots has up to N)
	for _, j := range jobs {
		// A record that cannot be opened or read is not trusted for pids;
		// its lock group, below, still shows whether it runs.
		st, _ := store.Load(j)
		if !st.IsRunning() {
			continue
		}
		r := Running{Job: j, Lock: st.Lock, PID: st.ActivePID(), StartedAt: st.StartedAt}
		if st.StartedAt != nil {
			r.RunningSeconds = now.Sub(*st.StartedAt).Seconds()
		}
		out = append(out, r)
		locks[st.Lock]++
	}
	held, err := lockgroup.Held(lockDir)
	if err != nil && !os.IsNotExist(err) {
		return out, err
	}
	for _, h := range held {
		// A holder no running job's state accounts for (its helper was
		// killed, or its run left processes behind) runs too.
		if locks[h.Name] > 0 {
			locks[h.Name]--
			continue
		}
		out = append(out, Running{Job: h.Job, Lock: h.Name, PID: h.PID, Left: h.Left})
	}
	return out, nil
}

// Marker is a marker as status shows it.
type Marker = state.Marker

// Job is one row of the status view.
type Job struct {
	Job                 string            `json:"job"`
	Lock                string            `json:"lock"`
	Timer               *systemd.Timer    `json:"timer"`
	Result              string            `json:"result"`
	Reason              string            `json:"reason"`
	ExitCode            *int              `json:"exit_code"`
	StartedAt           *time.Time        `json:"started_at"`
	FinishedAt          *time.Time        `json:"finished_at"`
	LastRun             *state.Run        `json:"last_run"`
	LastSuccessAt       *time.Time        `json:"last_success_at"`
	ConsecutiveFailures int               `json:"consecutive_failures"`
	Running             bool              `json:"running"`
	PID                 *int              `json:"pid"`
	Done                *Marker           `json:"done"`
	Halted              *Marker           `json:"halted"`
	Paused              *gate.Pause       `json:"paused"`
	Attempt             int               `json:"attempt,omitempty"`         // with retries: the latest tick's attempt
	NextAttemptAt       *time.Time        `json:"next_attempt_at,omitempty"` // while it waits to retry
	RetriesTotal        int64             `json:"retries_total"`
	NextDue             *time.Time        `json:"next_due,omitempty"` // the schedule's next elapse (start_deadline, catch_up, singleton)
	CatchUp             *state.CatchUp    `json:"catch_up,omitempty"` // a run the gate skipped, owed once it reopens
	Backoff             *backoff.B        `json:"backoff,omitempty"`  // its lock group's back-off, while it lasts
	History             []json.RawMessage `json:"history"`            // its latest runs, newest first (at most Options.History)
	ExpectedInterval    float64           `json:"expected_interval_seconds,omitempty"`
	// Late: no successful run within ExpectedInterval x Options.Tolerance.
	// LateWhy says why it is late, or why a job that has not succeeded for
	// that long is not (gated, paused, a marker, a back-off).
	// lockSlots is its lock group's size as its latest tick ran (0: one).
	lockSlots int

	Late    bool   `json:"late"`
	LateWhy string `json:"late_why,omitempty"`
	Error   string `json:"error,omitempty"` // what could not be read for this job

	firstRun *time.Time // the oldest run state.json remembers
	// historyJSON: every History entry is one JSON value (they came from
	// state's HistoryRaw, which checked it): encodeRow need not check again.
	historyJSON bool
}

// GateView is the gate as status and `gate show --json` print it.
type GateView struct {
	State  string     `json:"state"` // open | closed | unusable
	Exists bool       `json:"exists"`
	Error  string     `json:"error,omitempty"`
	Gate   *gate.Gate `json:"gate"`

	// gate show only: the fleet gate, and which gates stop every job now.
	Fleet     *GateView   `json:"fleet,omitempty"`
	StoppedBy []string    `json:"stopped_by,omitempty"`
	Backoffs  []backoff.B `json:"backoffs,omitempty"` // lock groups that back off now (host, and fleet marked "(fleet)")

	// The host's recurring blackout windows (tickgate_blackouts), each with
	// its opening in force or its next one.
	Blackouts []BlackoutView `json:"blackouts,omitempty"`
}

// BlackoutView is one blackout window as status and `gate show` print it.
type BlackoutView struct {
	blackout.Window
	Open  bool       `json:"open"`            // it is open now
	Start *time.Time `json:"start,omitempty"` // the opening in force, or the next (nil: none)
	End   *time.Time `json:"end,omitempty"`
	Error string     `json:"error,omitempty"` // it could not be evaluated
}

// MarshalJSON flattens the window's fields beside the view's.
func (b BlackoutView) MarshalJSON() ([]byte, error) {
	w, err := json.Marshal(b.Window)
	if err != nil {
		return nil, err
	}
	type view struct {
		Open  bool       `json:"open"`
		Start *time.Time `json:"start,omitempty"`
		End   *time.Time `json:"end,omitempty"`
		Error string     `json:"error,omitempty"`
	}
	v, err := json.Marshal(view{b.Open, b.Start, b.End, b.Error})
	if err != nil {
		return nil, err
	}
	return append(append(w[:len(w)-1], ','), v[1:]...), nil
}

// ViewBlackouts is the host's blackout windows (the file beside the gate
// file) at now. A file that cannot be read is one view with its error.
func ViewBlackouts(ctx context.Context, gatePath string, owners *safefs.Owners, now time.Time) []BlackoutView {
	ws, err := blackout.Load(gatePath, owners)
	if err != nil {
		return []BlackoutView{{Window: blackout.Window{Name: "?"}, Error: err.Error()}}
	}
	return ViewWindows(ctx, ws, now)
}

// ViewWindows is each of ws with its opening in force at now, or its next.
func ViewWindows(ctx context.Context, ws []blackout.Window, now time.Time) []BlackoutView {
	out := make([]BlackoutView, 0, len(ws))
	for _, w := range ws {
		v := BlackoutView{Window: w}
		sp, open, err := blackout.Current(ctx, w, now)
		switch {
		case errors.Is(err, calendar.ErrNever):
		case err != nil:
			v.Error = err.Error()
		default:
			v.Open, v.Start, v.End = open, &sp.Start, &sp.End
		}
		out = append(out, v)
	}
	return out
}

// ViewGate loads the gate file for display.
func ViewGate(path string, now time.Time) GateView {
	g, exists, err := gate.Load(path)
	if err != nil {
		return GateView{State: "unusable", Exists: exists, Error: err.Error()}
	}
	st := "open"
	if g.ClosedNow(now) {
		st = "closed"
	}
	return GateView{State: st, Exists: exists, Gate: g}
}

// Report is the whole status view.
type Report struct {
	Schema      int       `json:"schema"`
	Host        string    `json:"host"`
	Version     string    `json:"version"` // the helper's own version
	GeneratedAt time.Time `json:"generated_at"`
	Gate        GateView  `json:"gate"`
	Systemd     struct {
		Reachable bool   `json:"reachable"`
		Error     string `json:"error,omitempty"`
	} `json:"systemd"`
	Jobs     []Job       `json:"jobs"`
	Backoffs []backoff.B `json:"backoffs"` // this host's lock groups that back off now
	// LockGroups are the lock groups that a run holds now, with their
	// holders (a group of N slots has up to N).
	LockGroups []LockGroupView `json:"lock_groups"`
}

// LockGroupView is a lock group a run holds, as status shows it.
type LockGroupView struct {
	Lock    string       `json:"lock"`
	Slots   int          `json:"slots"`
	Holders []LockHolder `json:"holders"`
}

// LockHolder is one run holding a slot of a lock group.
type LockHolder struct {
	Job  string `json:"job"`
	PID  int    `json:"pid"`
	Left string `json:"left,omitempty"` // what of an earlier run still holds it (its helper gone)
}

// lockGroups joins the running jobs with the lock files held now.
func lockGroups(rows []Job, lockDir string) []LockGroupView {
	out := []LockGroupView{}
	if lockDir == "" {
		return out
	}
	held, _ := lockgroup.Held(lockDir)
	if len(held) == 0 {
		return out
	}
	slots := map[string]int{}
	running := map[string][]LockHolder{}
	for _, r := range rows {
		slots[r.Lock] = max(slots[r.Lock], r.lockSlots, 1)
		if r.Running && r.PID != nil {
			running[r.Lock] = append(running[r.Lock], LockHolder{Job: r.Job, PID: *r.PID})
		}
	}
	byLock := map[string]*LockGroupView{}
	var order []string
	for _, h := range held {
		if _, shown := slots[h.Name]; !shown {
			continue // the lock group of no job shown (status JOB...)
		}
		g := byLock[h.Name]
		if g == nil {
			g = &LockGroupView{Lock: h.Name, Slots: max(slots[h.Name], 1)}
			byLock[h.Name] = g
			order = append(order, h.Name)
		}
		if len(running[h.Name]) > 0 { // a held slot a running job accounts for
			g.Holders = append(g.Holders, running[h.Name][0])
			running[h.Name] = running[h.Name][1:]
			continue
		}
		g.Holders = append(g.Holders, LockHolder{Job: h.Job, PID: h.PID, Left: h.Left})
	}
	sort.Strings(order)
	for _, n := range order {
		out = append(out, *byLock[n])
	}
	return out
}

// Options select what Collect reads.
type Options struct {
	Version  string // the helper's version, reported as is
	Store    state.Store
	GatePath string
	Jobs     []string // empty: all known
	Systemd  bool     // ask systemd for timers
	LockDir  string   // for the lock groups' back-offs ("" = none shown)
	History  int      // runs of each job's history to include, newest first (0: none)
	// Tolerance: a job is late when it has not succeeded for its expected
	// interval times this (0: DefaultTolerance).
	Tolerance float64
}

// Collect builds the status view.
func Collect(ctx context.Context, o Options) (*Report, error) {
	now := time.Now().UTC()
	rep := &Report{Schema: Schema, Version: o.Version, GeneratedAt: now, Gate: ViewGate(o.GatePath, now)}
	rep.Host, _ = os.Hostname()
	// systemd is asked while the state files are read: at 1000 timers its
	// answers take about as long as the files.
	var timers map[string]systemd.Timer
	asked := make(chan struct{})
	go func() {
		defer close(asked)
		if !o.Systemd {
			return
		}
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		t, err := systemd.Timers(tctx)
		cancel()
		timers = t
		rep.Systemd.Reachable = t != nil
		if err != nil {
			rep.Systemd.Error = err.Error()
		}
	}()
	want := o.Jobs
	if len(want) == 0 {
		known, err := o.Store.Jobs()
		if err != nil {
			<-asked
			return nil, err
		}
		want = known
	}
	rows := o.jobRows(want, rep.Gate.Gate)
	<-asked
	if len(o.Jobs) == 0 {
		// Jobs with a timer and no state yet have rows too.
		seen := make(map[string]bool, len(want))
		for _, n := range want {
			seen[n] = true
		}
		var more []string
		for n := range timers {
			if !seen[n] {
				more = append(more, n)
			}
		}
		rows = append(rows, o.jobRows(more, rep.Gate.Gate)...)
		sort.Slice(rows, func(a, b int) bool { return rows[a].Job < rows[b].Job })
	}
	for i := range rows {
		if t, ok := timers[rows[i].Job]; ok {
			t := t
			rows[i].Timer = &t
		}
	}
	rep.Jobs = rows
	rep.Backoffs = ActiveBackoffs(o.LockDir, o.Store.Owners, now)
	rep.LockGroups = lockGroups(rep.Jobs, o.LockDir)
	rep.Gate.Blackouts = ViewBlackouts(context.Background(), o.GatePath, o.Store.Owners, now)
	for i := range rep.Jobs {
		for _, b := range rep.Backoffs {
			if b.Lock == rep.Jobs[i].Lock {
				b := b
				rep.Jobs[i].Backoff = &b
			}
		}
		rep.Jobs[i].judgeLate(rep.Gate.Gate, now, o.Tolerance)
	}
	return rep, nil
}

// jobRows reads the jobs' rows side by side (at 1000 jobs the reads are
// most of status' time), in the order of names.
func (o Options) jobRows(names []string, g *gate.Gate) []Job {
	rows := make([]Job, len(names))
	eachParallel(len(names), func(i int) { rows[i] = o.jobRow(names[i], g) })
	return rows
}

// eachParallel calls fn(0) ... fn(n-1), one worker per CPU; fn(i) writes
// only its own slot of the caller's results.
func eachParallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// jobRow is one job's row: its state, markers and pause (not its timer).
func (o Options) jobRow(name string, g *gate.Gate) Job {
	row := Job{Job: name, Lock: name, History: []json.RawMessage{}}
	var problems []string
	j, err := o.Store.Job(name, false)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		problems = append(problems, err.Error())
	}
	var st *state.State
	if j != nil {
		if st, err = j.Load(); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if st != nil {
		row.Lock = st.Lock
		if st.Admission != nil {
			row.lockSlots = st.Admission.LockSlots
		}
		row.Result, row.Reason, row.ExitCode = st.Result, st.Reason, st.ExitCode
		row.StartedAt, row.FinishedAt = st.StartedAt, st.FinishedAt
		row.LastRun, row.LastSuccessAt = st.LastRun, st.LastSuccessAt
		row.ConsecutiveFailures = st.ConsecutiveFailures
		row.Attempt, row.NextAttemptAt, row.RetriesTotal = st.Attempt, st.NextAttemptAt, st.RetriesTotal
		row.NextDue, row.CatchUp, row.ExpectedInterval = st.NextDue, st.CatchUp, st.ExpectedInterval
		if st.HistoryLen() > 0 {
			row.firstRun = st.HistoryRun(0).StartedAt
		}
		for i := st.HistoryLen() - 1; i >= 0 && len(row.History) < o.History; i-- {
			row.History = append(row.History, st.HistoryRaw(i))
		}
		row.historyJSON = true // HistoryRaw's: each one JSON value
		if st.IsRunning() {
			row.Running = true
			pid := st.ActivePID()
			row.PID = &pid
		} else if st.Result == state.Running {
			row.Result = "stale"
			row.Reason = "state says running but its processes are gone (helper killed?)"
		}
	}
	if j != nil {
		var derr, herr error
		row.Done, derr = j.ReadMarker(state.MarkerDone)
		row.Halted, herr = j.ReadMarker(state.MarkerHalted)
		for _, e := range []error{derr, herr} {
			if e != nil {
				problems = append(problems, e.Error())
			}
		}
		j.Close()
	}
	row.Error = strings.Join(problems, "; ")
	if g != nil {
		if p, ok := g.Paused[name]; ok {
			p := p
			row.Paused = &p
		}
	}
	return row
}

// DefaultTolerance is how many expected intervals a job may go without a
// success before it is late.
const DefaultTolerance = 2.0

// judgeLate sets Late and LateWhy. A job is late when its last success (or,
// if it never succeeded, its first recorded run) is older than its expected
// interval times the tolerance — unless something stops it on purpose.
func (j *Job) judgeLate(g *gate.Gate, now time.Time, tolerance float64) {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if j.ExpectedInterval <= 0 {
		return
	}
	ref := j.LastSuccessAt
	if ref == nil {
		ref = j.firstRun
	}
	if ref == nil {
		return
	}
	limit := time.Duration(j.ExpectedInterval * tolerance * float64(time.Second))
	age := now.Sub(*ref)
	if age <= limit {
		return
	}
	why := fmt.Sprintf("no success for %s (expected every %s, tolerance %gx)", age.Round(time.Second),
		time.Duration(j.ExpectedInterval*float64(time.Second)), tolerance)
	switch {
	case j.Halted != nil:
		j.LateWhy = "not late: halted (" + why + ")"
	case j.Done != nil:
		j.LateWhy = "not late: done"
	case g != nil && g.ClosedNow(now):
		j.LateWhy = "not late: the gate is closed (" + why + ")"
	case j.Paused != nil:
		j.LateWhy = "not late: paused (" + why + ")"
	case j.Backoff != nil:
		j.LateWhy = "not late: its lock group backs off (" + why + ")"
	default:
		j.Late, j.LateWhy = true, "late: "+why
	}
}

// ActiveBackoffs are the lock groups of this host that back off at now
// (never nil). Unreadable back-off files are left to the ticks to report.
func ActiveBackoffs(lockDir string, owners *safefs.Owners, now time.Time) []backoff.B {
	out := []backoff.B{}
	if lockDir == "" {
		return out
	}
	all, _ := backoff.All(lockDir, owners)
	for _, b := range all {
		if b.Active(now) {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Lock < out[b].Lock })
	return out
}
