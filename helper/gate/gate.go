// Package gate reads, judges and updates the rollout gate file
// (default /etc/tickgate/gate.json), the one place that opens and closes every
// job on a host.
//
// Readers (every tick of every job) take no lock: writers replace the file
// atomically. Writers serialise on a sidecar lock file (gate.json.lock) so
// concurrent pause/close from several shells lose nothing, and they keep
// fields they do not know about.
package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/gofrs/flock"

	"github.com/tickgate/tickgate/helper/fsutil"
)

// Pause is one job's pause switch.
type Pause struct {
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// Gate is the content of the gate file. A missing file is an open gate.
type Gate struct {
	Closed        bool             `json:"closed"`
	Reason        string           `json:"reason"`
	Token         string           `json:"token"`
	Since         *time.Time       `json:"since"`
	Until         *time.Time       `json:"until"`
	RolloutAt     *time.Time       `json:"rollout_at"`
	RolloutReason string           `json:"rollout_reason,omitempty"`
	Paused        map[string]Pause `json:"paused"`
}

// Problem says why a gate file cannot be used.
type Problem struct {
	Kind string // "unreadable", "malformed" or "insecure"
	Path string
	Err  error
}

func (p *Problem) Error() string { return fmt.Sprintf("gate file %s is %s: %v", p.Path, p.Kind, p.Err) }
func (p *Problem) Unwrap() error { return p.Err }

// Load reads and checks the gate file. A missing file yields an open gate and
// exists=false. Any other failure is a *Problem.
func Load(path string) (g *Gate, exists bool, err error) {
	// Stat before opening: opening a FIFO or device left at the path would
	// block or misbehave, and every job tick reads this file.
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Gate{Paused: map[string]Pause{}}, false, nil
	}
	if err != nil {
		return nil, true, &Problem{"unreadable", path, err}
	}
	if err := checkSecure(fi); err != nil {
		return nil, true, &Problem{"insecure", path, err}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, true, &Problem{"unreadable", path, err}
	}
	defer f.Close()
	if fi2, err := f.Stat(); err != nil || !os.SameFile(fi, fi2) {
		// Replaced between stat and open: judge the file we actually opened.
		if err != nil {
			return nil, true, &Problem{"unreadable", path, err}
		}
		if err := checkSecure(fi2); err != nil {
			return nil, true, &Problem{"insecure", path, err}
		}
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxSize+1)); err != nil {
		return nil, true, &Problem{"unreadable", path, err}
	}
	if buf.Len() > maxSize {
		return nil, true, &Problem{"malformed", path, fmt.Errorf("larger than %d bytes", maxSize)}
	}
	g, err = parse(buf.Bytes())
	if err != nil {
		return nil, true, &Problem{"malformed", path, err}
	}
	return g, true, nil
}

// maxSize bounds what a tick reads: a gate file is a few hundred bytes.
const maxSize = 1 << 20

func checkSecure(fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("mode %04o is writable by group or others (want 0644 or stricter)", fi.Mode().Perm())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := int(st.Uid); uid != 0 && uid != os.Geteuid() {
		return fmt.Errorf("owned by uid %d (want root or uid %d)", uid, os.Geteuid())
	}
	return nil
}

func parse(data []byte) (*Gate, error) {
	g := &Gate{}
	if err := json.Unmarshal(data, g); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%v (at byte %d)", err, se.Offset)
		}
		return nil, err
	}
	if g.Paused == nil {
		g.Paused = map[string]Pause{}
	}
	return g, nil
}

// Decision is the gate's answer for one job at one moment.
type Decision struct {
	Allowed bool
	Reason  string // machine-friendly prefix, then detail: "gate-closed: deploy 42"
}

// Evaluate decides whether job may start at now. expected is the job's
// declared runtime; a rollout window applies only to jobs that declare one.
func (g *Gate) Evaluate(job string, now time.Time, expected time.Duration) Decision {
	if g.Closed && (g.Until == nil || now.Before(*g.Until)) {
		return Decision{false, "gate-closed: " + orDash(g.Reason)}
	}
	if p, ok := g.Paused[job]; ok {
		return Decision{false, "job-paused: " + orDash(p.Reason)}
	}
	if g.RolloutAt != nil && expected > 0 && g.RolloutAt.Before(now.Add(expected)) {
		return Decision{false, fmt.Sprintf("rollout-window: rollout at %s overlaps expected runtime %s",
			g.RolloutAt.UTC().Format(time.RFC3339), expected)}
	}
	return Decision{Allowed: true}
}

// ClosedNow reports whether a closure is in force at now (not expired).
func (g *Gate) ClosedNow(now time.Time) bool {
	return g.Closed && (g.Until == nil || now.Before(*g.Until))
}

// PausedJobs returns the paused job names, sorted.
func (g *Gate) PausedJobs() []string {
	names := make([]string, 0, len(g.Paused))
	for n := range g.Paused {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ErrMalformed is returned by Update when the current file cannot be parsed
// and force was not given.
var ErrMalformed = errors.New("refusing to overwrite a malformed gate file (use --force to replace it)")

// Update applies fn to the current gate under the sidecar lock and writes the
// result atomically, keeping unknown fields, the file's owner, and its mode
// (made no looser than 0644). fn returning an error aborts without writing.
// With force, an unparsable file is replaced by fn applied to an open gate.
func Update(ctx context.Context, path string, force bool, fn func(*Gate) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	lk := flock.New(path+".lock", flock.SetPermissions(0o600))
	if _, err := lk.TryLockContext(ctx, 10*time.Millisecond); err != nil {
		return fmt.Errorf("lock %s: %w", path+".lock", err)
	}
	defer lk.Unlock()

	perm, owner := os.FileMode(0o644), fsutil.NoOwner
	raw := map[string]json.RawMessage{}
	g := &Gate{Paused: map[string]Pause{}}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return &Problem{"unreadable", path, err}
	default:
		if fi, err := os.Stat(path); err == nil {
			perm = fi.Mode().Perm() & 0o644
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				owner = fsutil.Owner{UID: int(st.Uid), GID: int(st.Gid)}
			}
		}
		parsed, perr := parse(data)
		if perr == nil {
			perr = json.Unmarshal(data, &raw)
		}
		if perr != nil {
			if !force {
				return fmt.Errorf("gate file %s: %v: %w", path, perr, ErrMalformed)
			}
			raw = map[string]json.RawMessage{}
		} else {
			g = parsed
		}
	}
	if err := fn(g); err != nil {
		return err
	}
	known, err := json.Marshal(g)
	if err != nil {
		return err
	}
	var knownMap map[string]json.RawMessage
	if err := json.Unmarshal(known, &knownMap); err != nil {
		return err
	}
	for k, v := range knownMap {
		raw[k] = v
	}
	if g.RolloutReason == "" {
		delete(raw, "rollout_reason")
	}
	out, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteAtomic(path, append(out, '\n'), perm, owner)
}
