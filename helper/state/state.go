// Package state keeps a job's durable record under STATE_DIR/JOB/:
// state.json (the last tick and the last real run), and the done/halted
// markers that stop a job for good until an operator clears them.
//
// Every file is replaced atomically. Read-modify-write of state.json is
// serialised per job by a sidecar lock (STATE_DIR/JOB/.state.lock) held for
// microseconds; readers (status, drain) take no lock at all.
package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/gofrs/flock"

	"github.com/tickgate/tickgate/helper/fsutil"
	"github.com/tickgate/tickgate/helper/proc"
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

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]*$`)

// ValidName checks a job or lock group name; what names the error is kind.
func ValidName(kind, name string) error {
	if len(name) > 200 || !nameRE.MatchString(name) {
		return fmt.Errorf("invalid %s name %q: want [A-Za-z0-9][A-Za-z0-9_.@-]*, at most 200 characters", kind, name)
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
}

// Skip is the last tick that did not run the command.
type Skip struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
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
	UpdatedAt           time.Time  `json:"updated_at"`
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

// Store is a state directory.
type Store struct{ Dir string }

// JobDir is STATE_DIR/JOB.
func (s Store) JobDir(job string) string { return filepath.Join(s.Dir, job) }

func (s Store) statePath(job string) string { return filepath.Join(s.JobDir(job), "state.json") }

// MarkerPath is STATE_DIR/JOB/NAME for a marker.
func (s Store) MarkerPath(job, name string) string { return filepath.Join(s.JobDir(job), name) }

// EnsureJobDir creates STATE_DIR/JOB (0755) if missing.
func (s Store) EnsureJobDir(job string) error {
	return os.MkdirAll(s.JobDir(job), 0o755)
}

// Load reads state.json; a missing file yields (nil, nil).
func (s Store) Load(job string) (*State, error) {
	data, err := os.ReadFile(s.statePath(job))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st := &State{}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("%s: %w", s.statePath(job), err)
	}
	return st, nil
}

// Update applies fn to the current state (a fresh one if none) under the
// job's state lock and writes it atomically.
func (s Store) Update(ctx context.Context, job string, fn func(*State)) (*State, error) {
	return s.UpdateWith(ctx, job, fn, Hooks{})
}

// Hooks run inside UpdateWith, under the job's state lock, on the new state.
type Hooks struct {
	// Before runs before state.json is written (e.g. a marker that must be
	// durable before the state that reports it).
	Before func(*State) error
	// Along runs concurrently with the write of state.json (e.g. metrics in
	// another directory), on a copy of the new state.
	Along func(*State) error
}

// UpdateWith is Update with hooks; their errors are joined with the write's.
func (s Store) UpdateWith(ctx context.Context, job string, fn func(*State), h Hooks) (*State, error) {
	lk := flock.New(filepath.Join(s.JobDir(job), ".state.lock"), flock.SetPermissions(0o644))
	if _, err := lk.TryLockContext(ctx, 2*time.Millisecond); err != nil {
		return nil, fmt.Errorf("state lock for job %s: %w", job, err)
	}
	defer lk.Unlock()
	cur, err := s.Load(job)
	if err != nil {
		// A state.json that does not parse was not written by us (writes are
		// atomic): keep it aside for inspection rather than lose it.
		_ = os.Rename(s.statePath(job), s.statePath(job)+".corrupt")
		cur = nil
	}
	if cur == nil {
		cur = &State{Job: job}
	}
	fn(cur)
	cur.UpdatedAt = time.Now().UTC()
	data, err := json.MarshalIndent(cur, "", "  ")
	if err != nil {
		return nil, err
	}
	if h.Before != nil {
		if err := h.Before(cur); err != nil {
			return cur, err
		}
	}
	alongErr := make(chan error, 1)
	if h.Along != nil {
		snapshot := *cur
		go func() { alongErr <- h.Along(&snapshot) }()
	} else {
		alongErr <- nil
	}
	werr := fsutil.WriteAtomic(s.statePath(job), append(data, '\n'), 0o644, fsutil.NoOwner)
	return cur, errors.Join(werr, <-alongErr)
}

// ReadMarker returns the marker, or nil if absent. A marker that exists but
// does not parse still counts: it is returned with its error as the reason.
func (s Store) ReadMarker(job, name string) (*Marker, error) {
	data, err := os.ReadFile(s.MarkerPath(job, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return &Marker{Reason: fmt.Sprintf("unreadable marker: %v", err)}, err
	}
	m := &Marker{}
	if err := json.Unmarshal(data, m); err != nil {
		return &Marker{Reason: fmt.Sprintf("unparsable marker: %v", err)}, nil
	}
	return m, nil
}

// WriteMarker writes a marker atomically.
func (s Store) WriteMarker(job, name string, m Marker) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteAtomic(s.MarkerPath(job, name), append(data, '\n'), 0o644, fsutil.NoOwner)
}

// RemoveMarker removes a marker; it reports whether one was there.
func (s Store) RemoveMarker(job, name string) (bool, error) {
	return fsutil.RemoveDurably(s.MarkerPath(job, name))
}

// Jobs lists the job directories under the state dir, sorted. A missing
// state dir has no jobs.
func (s Store) Jobs() ([]string, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var jobs []string
	for _, e := range entries {
		if e.IsDir() && ValidName("job", e.Name()) == nil {
			jobs = append(jobs, e.Name())
		}
	}
	sort.Strings(jobs)
	return jobs, nil
}

// Known reports whether the state dir has a directory for job.
func (s Store) Known(job string) bool {
	fi, err := os.Stat(s.JobDir(job))
	return err == nil && fi.IsDir()
}
