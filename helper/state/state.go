// Package state keeps a job's durable record under STATE_DIR/JOB/:
// state.json (the last tick and the last real run), and the done/halted
// markers that stop a job for good until an operator clears them.
//
// Every file is replaced atomically through an open, trusted directory
// descriptor (package safefs): nothing is followed, nothing blocks, nothing
// is read without a cap, and the job's name comes from the directory, never
// from file content. Every write in a job's directory is serialised by a
// sidecar lock (STATE_DIR/JOB/.state.lock) held for microseconds and waited
// for at most LockBound; readers (status, drain) take no lock at all.
package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"time"

	"github.com/tickgate/tickgate/helper/proc"
	"github.com/tickgate/tickgate/helper/safefs"
)

// Results of a tick.
const (
	Success     = "success"
	Failed      = "failed"
	Skipped     = "skipped"
	Done        = "done"
	Halted      = "halted"
	Interrupted = "interrupted"
	Running     = "running"
)

// Marker names.
const (
	MarkerDone   = "done"
	MarkerHalted = "halted"
)

// Names (helper/testdata/contract.json holds the cases the role's preflight
// shares). A job name is part of unit names (tickgate-NAME.service), so it is
// lower case and has no "@" (a template unit's separator):
//
//	job   ^[a-z0-9][a-z0-9_.-]*$
//	lock  ^[A-Za-z0-9][A-Za-z0-9_.@-]*$
//
// Checked byte by byte, not by regexp: compiling the two patterns at package
// initialisation cost every tickgate process ~15 µs (the tests hold the
// patterns as the reference).
func nameMatches(name string, lock bool) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case lock && 'A' <= c && c <= 'Z':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		case i > 0 && lock && c == '@':
		default:
			return false
		}
	}
	return true
}

// ReservedJobs are names tickgate's own units use (tickgate-NAME.service).
var ReservedJobs = map[string]bool{"catch-up": true, "fleet-starts": true}

// MaxNameLen bounds job and lock names.
const MaxNameLen = 200

// ValidName checks a job name (kind "job") or a lock group name (any other
// kind, which also names the error).
func ValidName(kind, name string) error {
	want := "[A-Za-z0-9][A-Za-z0-9_.@-]*"
	if kind == "job" {
		want = "[a-z0-9][a-z0-9_.-]*"
	}
	if len(name) > MaxNameLen || !nameMatches(name, kind != "job") {
		return fmt.Errorf("invalid %s name %q: want %s, at most %d characters", kind, name, want, MaxNameLen)
	}
	if kind == "job" && ReservedJobs[name] {
		return fmt.Errorf("invalid job name %q: reserved (tickgate-%s.service is tickgate's own unit)", name, name)
	}
	return nil
}

// Run describes one execution of the job's command.
type Run struct {
	RunID           string     `json:"run_id"`
	Result          string     `json:"result"`
	Reason          string     `json:"reason"`
	StartedAt       *time.Time `json:"started_at"`
	FinishedAt      *time.Time `json:"finished_at"`
	DurationSeconds float64    `json:"duration_seconds"`
	ExitCode        *int       `json:"exit_code"`
	Fence           int64      `json:"fence,omitempty"`           // the fleet lock's fencing token the run held
	Slot            *time.Time `json:"slot,omitempty"`            // a floating singleton's slot (named by the elapse that ends it)
	Attempt         int        `json:"attempt,omitempty"`         // which attempt this is (1 = the first; retries count on)
	NextAttemptAt   *time.Time `json:"next_attempt_at,omitempty"` // while waiting to retry: when the next attempt starts
	Invocation      string     `json:"invocation_id,omitempty"`   // the unit's invocation (systemd's INVOCATION_ID) the tick ran in
	Manual          bool       `json:"manual,omitempty"`          // started by `tickgate start`, not by the timer
	Forced          bool       `json:"forced,omitempty"`          // `tickgate start --force`: the gate was not asked
}

// DefaultHistory is how many runs state.json keeps unless told otherwise.
const DefaultHistory = 50

// CatchUp is a run owed once the gate reopens.
type CatchUp struct {
	Slot   time.Time `json:"slot"`
	Reason string    `json:"reason"`
}

// Skip is the last tick that did not run the command.
type Skip struct {
	At         time.Time `json:"at"`
	Reason     string    `json:"reason"`
	Invocation string    `json:"invocation_id,omitempty"`
}

// State is state.json. The top-level run fields describe the latest tick
// (a skip included); LastRun keeps the last time the command really ran.
type State struct {
	Job  string `json:"job"`
	Lock string `json:"lock"`
	Run
	LastSuccessAt       *time.Time `json:"last_success_at"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	PID                 int        `json:"pid"`
	PIDStart            uint64     `json:"pid_start,omitempty"`
	HelperPID           int        `json:"helper_pid,omitempty"`
	HelperPIDStart      uint64     `json:"helper_pid_start,omitempty"`
	LastRun             *Run       `json:"last_run"`
	LastSkip            *Skip      `json:"last_skip"`
	RunsTotal           int64      `json:"runs_total"`
	FailuresTotal       int64      `json:"failures_total"`
	SkipsTotal          int64      `json:"skips_total"`
	RetriesTotal        int64      `json:"retries_total"` // attempts that failed with a retry code and were retried
	// NextDue is the schedule's next elapse as the latest tick started (the
	// elapse the timer fires the next tick for), and Schedule the
	// expressions it was computed from.
	NextDue  *time.Time `json:"next_due,omitempty"`
	Schedule string     `json:"schedule,omitempty"`
	// Elapses caches the schedule's coming elapses (asked of systemd once
	// per 50), and ExpectedInterval is the longest gap between two of them:
	// the interval a job should complete within (late jobs, alert rules).
	Elapses          []time.Time `json:"elapses,omitempty"`
	ExpectedInterval float64     `json:"expected_interval_seconds,omitempty"`
	// CatchUp is set while a run the gate skipped waits for the gate to
	// reopen (catch_up: once); Slot is when the latest skipped run was due.
	CatchUp *CatchUp `json:"catch_up,omitempty"`
	// Admission is how the latest tick was admitted (its flags), so that
	// `tickgate gate check JOB` gives the answer a tick gets.
	Admission *Admission `json:"admission,omitempty"`
	UpdatedAt time.Time  `json:"updated_at"`
	// History is the job's latest runs of its command, oldest first, at
	// most the helper's --history (default 50): state.json is written
	// atomically anyway, so history costs no write of its own. It stays
	// the last field (history.go reads the file without decoding it); read
	// it with HistoryLen, HistoryRun and Runs.
	History []Run `json:"history,omitempty"`

	rawHistory [][]byte // the runs as read, not decoded (History is nil then)
	rawValid   bool     // every run in rawHistory is known to be JSON (Marshal need not check)
}

// Admission is what a job's ticks are admitted by besides the files every
// tick reads (package admit): its fleet coordination and its policy.
type Admission struct {
	Fleet           bool    `json:"fleet,omitempty"`      // it obeys the fleet gate
	LockScope       string  `json:"lock_scope,omitempty"` // "fleet": its lock group is held fleet-wide
	LockSlots       int     `json:"lock_slots,omitempty"` // its lock group admits this many runs at once (0: one)
	Requires        string  `json:"requires,omitempty"`   // its preconditions (--requires), for an operator's gate check
	Singleton       bool    `json:"singleton,omitempty"`  // a floating singleton
	ExpectedRuntime float64 `json:"expected_runtime_seconds,omitempty"`
	GateFailOpen    bool    `json:"gate_fail_open,omitempty"`
}

// IsRunning reports whether the record says running and its child or helper
// process is still alive (not a stale record left by a killed helper).
func (s *State) IsRunning() bool {
	if s == nil || s.Result != Running {
		return false
	}
	return proc.Alive(s.PID, s.PIDStart) || proc.Alive(s.HelperPID, s.HelperPIDStart)
}

// ActivePID is the pid to show for a running job: the child, or the helper
// before the child has started.
func (s *State) ActivePID() int {
	if proc.Alive(s.PID, s.PIDStart) {
		return s.PID
	}
	return s.HelperPID
}

// Marker is the content of a done/halted marker file.
type Marker struct {
	At       time.Time `json:"at"`
	Reason   string    `json:"reason"`
	ExitCode *int      `json:"exit_code"`
	RunID    string    `json:"run_id"`
}

// Read caps: state.json and markers are a few hundred bytes.
const (
	MaxStateSize  = 1 << 20
	MaxMarkerSize = 64 << 10
)

// LockBound is the longest a writer waits for a job's state lock.
const LockBound = 5 * time.Second

const (
	stateFile = "state.json"
	lockFile  = ".state.lock"
)

// CorruptError is a state.json that exists and was read but does not parse.
type CorruptError struct {
	Path string
	Err  error
}

func (e *CorruptError) Error() string { return fmt.Sprintf("%s does not parse: %v", e.Path, e.Err) }
func (e *CorruptError) Unwrap() error { return e.Err }

// Store is a state directory. Owners says whom its directories may belong to.
type Store struct {
	Dir    string
	Owners *safefs.Owners
}

// JobDir is STATE_DIR/JOB (for messages and the environment only: files are
// opened through Job).
func (s Store) JobDir(job string) string { return filepath.Join(s.Dir, job) }

// root opens the state dir and checks that no job's user can write to it.
func (s Store) root(create bool) (*safefs.Dir, error) {
	if s.Dir == "" {
		return nil, errors.New("empty state dir")
	}
	d, err := safefs.OpenRoot(s.Dir, create, 0o755)
	if err != nil {
		return nil, err
	}
	if err := d.Trusted(s.Owners); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Job opens STATE_DIR/JOB (create: making it and the state dir if missing)
// and checks that it, too, is trusted. Close the Job when done.
func (s Store) Job(job string, create bool) (*Job, error) {
	if err := ValidName("job", job); err != nil {
		return nil, err
	}
	root, err := s.root(create)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	d, err := root.Sub(job, create, 0o755)
	if err != nil {
		return nil, err
	}
	if err := d.Trusted(s.Owners); err != nil {
		d.Close()
		return nil, err
	}
	return &Job{Name: job, Dir: d, owners: s.Owners}, nil
}

// Jobs lists the job directories under the state dir, sorted. A missing
// state dir has no jobs; links are not followed.
func (s Store) Jobs() ([]string, error) {
	root, err := s.root(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer root.Close()
	names, err := root.Names()
	if err != nil {
		return nil, err
	}
	var jobs []string
	for _, n := range names {
		if ValidName("job", n) == nil && root.IsDir(n) {
			jobs = append(jobs, n)
		}
	}
	sort.Strings(jobs)
	return jobs, nil
}

// Load reads one job's state.json: (nil, nil) when the job has no directory
// or no state yet.
func (s Store) Load(job string) (*State, error) {
	j, err := s.Job(job, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer j.Close()
	return j.Load()
}

// Job is one job's open, trusted state directory.
type Job struct {
	Name   string
	Dir    *safefs.Dir
	owners *safefs.Owners
}

// Close releases the directory.
func (j *Job) Close() error { return j.Dir.Close() }

// Path of a file in the job's directory, for messages.
func (j *Job) Path(name string) string { return filepath.Join(j.Dir.Path(), name) }

// Load reads state.json: (nil, nil) if missing, a *CorruptError if it does
// not parse, any other error if it cannot be read (never treated as empty).
func (j *Job) Load() (*State, error) { return j.load(nil) }

// load is Load, taking pre's decoded state when the file still holds the
// bytes pre read (each Preloaded is used once).
func (j *Job) load(pre *Preloaded) (*State, error) {
	data, err := j.readStateFile()
	if data == nil || err != nil {
		return nil, err
	}
	if pre != nil && pre.st != nil && bytes.Equal(data, pre.data) {
		st := pre.st
		pre.st = nil
		return st, nil
	}
	return j.parse(data)
}

// parse decodes state.json's content (its history kept raw): a
// *CorruptError if it does not parse.
func (j *Job) parse(data []byte) (*State, error) {
	st, err := parseLazy(data)
	if err != nil {
		return nil, &CorruptError{Path: j.Path(stateFile), Err: err}
	}
	st.Job = j.Name // the directory names the job, never the content
	return st, nil
}

// Preloaded is state.json as Preload read and decoded it, without the lock.
type Preloaded struct {
	data []byte
	st   *State
}

// Preload reads and decodes state.json without the state lock, for an
// Update soon after (Hooks.Pre): a tick does it while its command runs, so
// that recording the outcome, under the lock, decodes nothing when the file
// still holds the same bytes (compared byte for byte: never trusted
// otherwise). It checks that the runs kept raw are JSON, so Marshal need
// not, and builds encoding/json's caches for the state's types. nil:
// nothing to reuse (no state yet, or one that does not read or decode).
func (j *Job) Preload() *Preloaded {
	data, err := j.readStateFile()
	var st *State
	if err == nil && data != nil {
		st, err = j.parse(data)
	}
	if err != nil || st == nil {
		_, _ = json.Marshal(&State{}) // the caches, at least
		return nil
	}
	st.rawValid = st.rawHistory != nil && json.Valid(data)
	_, _ = json.Marshal(st)
	return &Preloaded{data: data, st: st}
}

// readStateFile is state.json's content: (nil, nil) if there is none.
func (j *Job) readStateFile() ([]byte, error) {
	data, err := j.Dir.ReadFile(stateFile, MaxStateSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if data == nil {
		data = []byte{} // an empty file is there: it does not parse
	}
	return data, nil
}

// ScheduleView is the part of state.json a tick reads before it takes its
// state lock (when it was due, the cached elapses): decoding only these
// skips the run history.
type ScheduleView struct {
	NextDue          *time.Time  `json:"next_due"`
	Schedule         string      `json:"schedule"`
	Elapses          []time.Time `json:"elapses"`
	ExpectedInterval float64     `json:"expected_interval_seconds"`
	CatchUp          *CatchUp    `json:"catch_up"`
}

// LoadSchedule reads the ScheduleView of state.json (nil: no state yet).
func (j *Job) LoadSchedule() (*ScheduleView, error) {
	data, err := j.readStateFile()
	if data == nil || err != nil {
		return nil, err
	}
	if head, _, ok := splitHistory(data); ok {
		data = head
	}
	v := &ScheduleView{}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, &CorruptError{Path: j.Path(stateFile), Err: err}
	}
	return v, nil
}

// Parse reads state.json's content.
func Parse(data []byte) (*State, error) {
	st := &State{}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, err
	}
	return st, nil
}

// ParseMarker reads a marker's content.
func ParseMarker(data []byte) (*Marker, error) {
	m := &Marker{}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, err
	}
	return m, nil
}

// Hooks run inside Update, under the job's state lock, on the new state.
type Hooks struct {
	// Before runs before state.json is written (e.g. a marker that must be
	// durable before the state that reports it).
	Before func(*Job, *State) error
	// Along runs concurrently with the write of state.json (e.g. metrics in
	// another directory), on a copy of the new state.
	Along func(*State) error
	// Pre is state.json as read before the lock (Preload), used if unchanged.
	Pre *Preloaded
}

// Locked runs fn under the job's state lock, waiting at most LockBound (and
// less if ctx ends first). Every writer of state.json and the markers holds
// it, so they write through fixed temp names (safefs.WriteAtomicHeld) that
// the next write removes if a SIGKILLed writer left one.
func (j *Job) Locked(ctx context.Context, fn func() error) error {
	lf, err := j.Dir.OpenLock(lockFile, 0o600, j.owners)
	if err != nil {
		return fmt.Errorf("job %s: state lock: %w", j.Name, err)
	}
	defer lf.Close()
	// Free, as it nearly always is: ctx is not looked at (a tick's watches
	// on it start only when it is).
	if ok, err := safefs.TryFlock(lf); ok || err != nil {
		if err != nil {
			return fmt.Errorf("job %s: state lock: %w", j.Name, err)
		}
		return fn()
	}
	ctx, cancel := context.WithTimeout(ctx, LockBound)
	defer cancel()
	if err := safefs.Flock(ctx, lf, 2*time.Millisecond); err != nil {
		return fmt.Errorf("job %s: state lock not taken within %s: %w", j.Name, LockBound, err)
	}
	return fn()
}

// Update applies fn to the current state (a fresh one if none) under the
// job's state lock and writes it atomically. A state.json that does not
// parse is moved aside to state.json.corrupt first; one that cannot be read
// fails the update, so a read error never resets the record.
func (j *Job) Update(ctx context.Context, fn func(*State), h Hooks) (*State, error) {
	var cur *State
	err := j.Locked(ctx, func() error {
		var err error
		cur, err = j.load(h.Pre)
		var ce *CorruptError
		if errors.As(err, &ce) {
			// Writes are atomic, so this was not written by tickgate: keep it
			// for inspection rather than lose it.
			if rerr := j.Dir.Rename(stateFile, stateFile+".corrupt"); rerr != nil {
				return fmt.Errorf("%v; moving it aside: %w", err, rerr)
			}
			cur, err = nil, nil
		}
		if err != nil {
			return fmt.Errorf("job %s: %w", j.Name, err)
		}
		if cur == nil {
			cur = &State{}
		}
		cur.Job = j.Name
		fn(cur)
		cur.UpdatedAt = time.Now().UTC()
		data, err := cur.Marshal()
		if err != nil {
			return err
		}
		if h.Before != nil {
			if err := h.Before(j, cur); err != nil {
				return err
			}
		}
		alongErr := make(chan error, 1)
		if h.Along != nil {
			snapshot := *cur
			go func() { alongErr <- h.Along(&snapshot) }()
		} else {
			alongErr <- nil
		}
		werr := j.Dir.WriteAtomicHeld(stateFile, append(data, '\n'), 0o644)
		return errors.Join(werr, <-alongErr)
	})
	return cur, err
}

// ReadMarker returns the marker, or (nil, nil) if absent. A marker that
// exists but cannot be read or parsed still counts: it is returned with a
// reason saying so, and the error.
func (j *Job) ReadMarker(name string) (*Marker, error) {
	data, err := j.Dir.ReadFile(name, MaxMarkerSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return &Marker{Reason: fmt.Sprintf("unreadable marker: %v", err)}, err
	}
	m, err := ParseMarker(data)
	if err != nil {
		err = fmt.Errorf("%s does not parse: %w", j.Path(name), err)
		return &Marker{Reason: fmt.Sprintf("unparsable marker: %v", err)}, err
	}
	return m, nil
}

// HasMarker reports whether the marker exists (as anything at all).
func (j *Job) HasMarker(name string) bool {
	ok, err := j.Dir.Exists(name)
	return ok || err != nil
}

// WriteMarker writes a marker atomically. Call it under Locked (or from a
// Before hook).
func (j *Job) WriteMarker(name string, m Marker) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return j.Dir.WriteAtomicHeld(name, append(data, '\n'), 0o644)
}

// RemoveMarker removes a marker; it reports whether one was there.
func (j *Job) RemoveMarker(name string) (bool, error) {
	return j.Dir.Remove(name)
}
