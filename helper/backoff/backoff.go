// Package backoff is the shared back-off of a lock group (the Retry-After
// sentinel): a job told by a resource to back off asks for it, and every job
// of its lock group skips until it ends. On a host it is a file beside the
// group's lock (LOCKDIR/NAME.backoff, the supervisor's, 0644); fleet-wide
// it is a row in PostgreSQL (package fleet). A back-off only ever extends,
// except an operator's Clear.
package backoff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tickgate/tickgate/helper/lockgroup"
	"github.com/tickgate/tickgate/helper/safefs"
)

// Max bounds how far ahead a back-off may reach.
const Max = 7 * 24 * time.Hour

// MaxReason bounds a back-off's reason.
const MaxReason = 300

// B is a back-off.
type B struct {
	Lock   string    `json:"lock"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
	SetBy  string    `json:"set_by"` // "job JOB on HOST" or "operator"
	SetAt  time.Time `json:"set_at"`
	Fleet  bool      `json:"fleet,omitempty"` // a fleet lock group's, from PostgreSQL
}

// Active says whether b stops jobs at now.
func (b *B) Active(now time.Time) bool { return b != nil && now.Before(b.Until) }

// Validate checks a requested back-off: a reason (printable, bounded) and an
// end in the future, at most Max ahead.
func Validate(until time.Time, reason string, now time.Time) error {
	switch {
	case strings.TrimSpace(reason) == "":
		return errors.New("a back-off needs a reason (--reason)")
	case len(reason) > MaxReason || !utf8.ValidString(reason) || strings.IndexFunc(reason, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return fmt.Errorf("the reason must be printable text of at most %d bytes", MaxReason)
	case !until.After(now):
		return fmt.Errorf("the back-off would end at %s, which is not in the future", until.UTC().Format(time.RFC3339))
	case until.Sub(now) > Max:
		return fmt.Errorf("the back-off would end at %s, more than %s ahead", until.UTC().Format(time.RFC3339), Max)
	}
	return nil
}

func file(lock string) string { return lock + ".backoff" }

// Read returns the lock group's back-off on this host (nil: none). A file
// that is not tickgate's, or does not parse, is an error: it stops nothing
// silently and starts nothing silently either.
func Read(lockDir, lock string, owners *safefs.Owners) (*B, error) {
	d, err := safefs.OpenRoot(lockDir, false, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lock dir: %w", err)
	}
	defer d.Close()
	return read(d, lock, owners)
}

func read(d *safefs.Dir, lock string, owners *safefs.Owners) (*B, error) {
	data, _, err := d.ReadOwned(file(lock), 4096, owners, true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("back-off of lock group %s: %w", lock, err)
	}
	var b B
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil || b.Lock != lock || b.Until.IsZero() {
		return nil, fmt.Errorf("back-off of lock group %s: %s does not parse (%v)", lock, d.Path()+"/"+file(lock), err)
	}
	return &b, nil
}

// Extend sets the group's back-off to end at b.Until unless it already ends
// later (then it is kept; the result says which stands). It serialises
// writers with a lock file of its own.
func Extend(ctx context.Context, lockDir string, b B, owners *safefs.Owners) (*B, error) {
	return update(ctx, lockDir, b.Lock, owners, func(cur *B) (*B, error) {
		if cur != nil && !b.Until.After(cur.Until) {
			return cur, errKeep
		}
		return &b, nil
	})
}

// Clear removes the group's back-off (an operator's command). It reports
// whether there was one.
func Clear(ctx context.Context, lockDir, lock string, owners *safefs.Owners) (*B, error) {
	return update(ctx, lockDir, lock, owners, func(cur *B) (*B, error) { return cur, errRemove })
}

var errKeep, errRemove = errors.New("keep"), errors.New("remove")

func update(ctx context.Context, lockDir, lock string, owners *safefs.Owners, fn func(*B) (*B, error)) (*B, error) {
	d, err := lockgroup.OpenDir(lockDir, owners)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	lf, err := d.OpenLock(file(lock)+"-lk", 0o600, owners) // not NAME.lock: that would look like a lock group
	if err != nil {
		return nil, fmt.Errorf("back-off of lock group %s: %w", lock, err)
	}
	defer lf.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := safefs.Flock(ctx, lf, 20*time.Millisecond); err != nil {
		return nil, fmt.Errorf("back-off of lock group %s: %w", lock, err)
	}
	cur, err := read(d, lock, owners)
	if err != nil && fn != nil {
		// An unreadable file is replaced by a new back-off or a clear.
		cur = nil
	}
	next, err := fn(cur)
	switch {
	case errors.Is(err, errKeep):
		return next, nil
	case errors.Is(err, errRemove):
		if _, err := d.Remove(file(lock)); err != nil {
			return nil, fmt.Errorf("back-off of lock group %s: %w", lock, err)
		}
		return next, nil
	case err != nil:
		return nil, err
	}
	data, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return nil, err
	}
	// Under the -lk lock: a fixed temp name, so the lock dir (every lock
	// group's files) is not listed for a SIGKILLed writer's leftover.
	if err := d.WriteAtomicHeld(file(lock), append(data, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("back-off of lock group %s: %w", lock, err)
	}
	return next, nil
}

// All returns every back-off in the lock dir (for status and gate show),
// active or not, and the problems met reading them.
func All(lockDir string, owners *safefs.Owners) ([]B, []error) {
	d, err := safefs.OpenRoot(lockDir, false, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("lock dir: %w", err)}
	}
	defer d.Close()
	names, err := d.Names()
	if err != nil {
		return nil, []error{err}
	}
	var out []B
	var errs []error
	for _, n := range names {
		lock, ok := strings.CutSuffix(n, ".backoff")
		if !ok || strings.HasPrefix(n, ".") {
			continue
		}
		b, err := read(d, lock, owners)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if b != nil {
			out = append(out, *b)
		}
	}
	return out, errs
}
