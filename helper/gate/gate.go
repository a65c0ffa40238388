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
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/tickgate/tickgate/helper/reason"
	"github.com/tickgate/tickgate/helper/safefs"
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
// exists=false. Any other failure is a *Problem. The file is opened without
// following a link or blocking, must be a regular file owned by root (or the
// helper's own user) that no one else can write, and is read with a cap.
func Load(path string) (g *Gate, exists bool, err error) {
	data, _, err := read(path, true)
	if errors.Is(err, fs.ErrNotExist) {
		return &Gate{Paused: map[string]Pause{}}, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	g, err = Parse(data)
	if err != nil {
		return nil, true, &Problem{"malformed", path, err}
	}
	return g, true, nil
}

// read reads the gate file; strictMode also refuses a group- or
// other-writable one (a writer instead tightens it).
func read(path string, strictMode bool) ([]byte, safefs.FileInfo, error) {
	if path == "" {
		return nil, safefs.FileInfo{}, &Problem{"unreadable", path, errors.New("empty gate path")}
	}
	d, err := safefs.OpenRoot(filepath.Dir(path), false, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, safefs.FileInfo{}, err
		}
		return nil, safefs.FileInfo{}, &Problem{"unreadable", path, err}
	}
	defer d.Close()
	data, fi, err := d.ReadOwned(filepath.Base(path), maxSize, nil, strictMode)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fi, err
	case errors.Is(err, safefs.ErrTooLarge):
		return nil, fi, &Problem{"malformed", path, fmt.Errorf("larger than %d bytes", maxSize)}
	case errors.Is(err, safefs.ErrUntrusted), errors.Is(err, safefs.ErrNotRegular), errors.Is(err, unix.ELOOP):
		return nil, fi, &Problem{"insecure", path, unwrapPath(err)}
	case err != nil:
		return nil, fi, &Problem{"unreadable", path, unwrapPath(err)}
	}
	return data, fi, nil
}

// unwrapPath drops the *PathError's own path: Problem names the file.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// maxSize bounds what a tick reads: a gate file is a few hundred bytes.
const maxSize = 1 << 20

// Parse reads a gate file's content strictly: valid UTF-8, one JSON object,
// no key twice in any object, no key that differs from a known one only in
// case, every known field of its type, and null only for a time that may be
// absent. Unknown keys are allowed (and kept by Update).
func Parse(data []byte) (*Gate, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not valid UTF-8")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%v (at byte %d)", err, se.Offset)
		}
		return nil, fmt.Errorf("the gate must be a JSON object: %v", err)
	}
	if top == nil {
		return nil, errors.New("the gate must be a JSON object, not null")
	}
	if err := noDuplicateKeys(data); err != nil {
		return nil, err
	}
	g := &Gate{Paused: map[string]Pause{}}
	err := decodeFields("", top, []field{
		{"closed", kindBool, &g.Closed}, {"reason", kindString, &g.Reason}, {"token", kindString, &g.Token},
		{"since", kindTimeOrNull, &g.Since}, {"until", kindTimeOrNull, &g.Until},
		{"rollout_at", kindTimeOrNull, &g.RolloutAt}, {"rollout_reason", kindString, &g.RolloutReason},
		{"paused", kindObject, nil},
	})
	if err != nil {
		return nil, err
	}
	if raw, ok := top["paused"]; ok {
		var jobs map[string]json.RawMessage
		if err := json.Unmarshal(raw, &jobs); err != nil {
			return nil, fmt.Errorf("paused: %v", err)
		}
		for job, raw := range jobs {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
				return nil, fmt.Errorf("paused.%s: must be an object {\"reason\", \"since\"}", job)
			}
			var p Pause
			if err := decodeFields("paused."+job+".", obj, []field{{"reason", kindString, &p.Reason}, {"since", kindTime, &p.Since}}); err != nil {
				return nil, err
			}
			g.Paused[job] = p
		}
	}
	return g, nil
}

type kind int

const (
	kindBool kind = iota
	kindString
	kindTime
	kindTimeOrNull
	kindObject
)

var kindName = map[kind]string{kindBool: "true or false", kindString: "a string", kindTime: "an RFC3339 time",
	kindTimeOrNull: "an RFC3339 time or null", kindObject: "an object"}

type field struct {
	key  string
	kind kind
	dst  any
}

// decodeFields decodes known keys by their exact name (never by Go's
// case-insensitive matching) and rejects near-misses of them.
func decodeFields(prefix string, obj map[string]json.RawMessage, fields []field) error {
	byFold := map[string]string{}
	for _, f := range fields {
		byFold[strings.ToLower(f.key)] = f.key
	}
	for k := range obj {
		known := false
		for _, f := range fields {
			known = known || f.key == k
		}
		if canon, ok := byFold[strings.ToLower(k)]; ok && !known {
			return fmt.Errorf("key %q differs from %q only in case", prefix+k, prefix+canon)
		}
	}
	for _, f := range fields {
		raw, ok := obj[f.key]
		if !ok {
			continue
		}
		v := bytes.TrimSpace(raw)
		isNull := string(v) == "null"
		okType := false
		switch f.kind {
		case kindBool:
			okType = string(v) == "true" || string(v) == "false"
		case kindString, kindTime:
			okType = len(v) > 0 && v[0] == '"'
		case kindTimeOrNull:
			okType = isNull || len(v) > 0 && v[0] == '"'
		case kindObject:
			okType = len(v) > 0 && v[0] == '{'
		}
		if !okType {
			return fmt.Errorf("%s%s: must be %s, not %s", prefix, f.key, kindName[f.kind], clip(string(v)))
		}
		if f.dst == nil || isNull {
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return fmt.Errorf("%s%s: %v", prefix, f.key, err)
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// noDuplicateKeys walks every object of a syntactically valid document.
func noDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var walk func(path string) error
	walk = func(path string) error {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := t.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k, _ := kt.(string)
				if seen[k] {
					return fmt.Errorf("key %q appears twice", path+k)
				}
				seen[k] = true
				if err := walk(path + k + "."); err != nil {
					return err
				}
			}
		case '[':
			for dec.More() {
				if err := walk(path); err != nil {
					return err
				}
			}
		}
		_, err = dec.Token() // the closing delimiter
		return err
	}
	return walk("")
}

// Decision is the gate's answer for one job at one moment.
type Decision struct {
	Allowed bool
	Reason  string // machine-friendly prefix, then detail: "gate-closed: deploy 42"
}

// Evaluate decides whether job may start at now. expected is the job's
// declared runtime; a rollout window applies only to jobs that declare one.
func (g *Gate) Evaluate(job string, now time.Time, expected time.Duration) Decision {
	if g.ClosedNow(now) {
		return Decision{false, reason.F(reason.GateClosed, "%s", orDash(g.Reason))}
	}
	if p, ok := g.Paused[job]; ok {
		return Decision{false, reason.F(reason.JobPaused, "%s", orDash(p.Reason))}
	}
	if g.RolloutAt != nil && expected > 0 && g.RolloutAt.Before(now.Add(expected)) {
		return Decision{false, reason.F(reason.RolloutWindow, "rollout at %s overlaps expected runtime %s",
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

// LockBound is the longest a writer waits for the gate's sidecar lock.
const LockBound = 10 * time.Second

// Update applies fn to the current gate under the sidecar lock and writes the
// result atomically, keeping unknown fields and the file's mode (made no
// looser than 0644). fn returning an error aborts without writing. With
// force, an unparsable file is replaced by fn applied to an open gate.
func Update(ctx context.Context, path string, force bool, fn func(*Gate) error) error {
	if path == "" {
		return errors.New("empty gate path")
	}
	d, err := safefs.OpenRoot(filepath.Dir(path), true, 0o755)
	if err != nil {
		return err
	}
	defer d.Close()
	name := filepath.Base(path)
	lf, err := d.OpenLock(name+".lock", 0o600, nil)
	if err != nil {
		return err
	}
	defer lf.Close()
	lctx, cancel := context.WithTimeout(ctx, LockBound)
	defer cancel()
	if err := safefs.Flock(lctx, lf, 10*time.Millisecond); err != nil {
		return fmt.Errorf("gate lock not taken within %s: %w", LockBound, err)
	}
	d.CleanTemps(0, name)

	perm, uid, gid := os.FileMode(0o644), -1, -1
	raw := map[string]json.RawMessage{}
	g := &Gate{Paused: map[string]Pause{}}
	data, fi, err := read(path, false)
	var p *Problem
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case errors.As(err, &p) && p.Kind == "insecure" && !force:
		return err
	case err != nil && !force:
		return fmt.Errorf("%v: %w", err, ErrMalformed)
	case err != nil:
	default:
		perm, uid, gid = fi.Mode&0o644, fi.UID, fi.GID
		parsed, perr := Parse(data)
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
	return d.WriteAtomicAs(name, append(out, '\n'), perm, uid, gid)
}
