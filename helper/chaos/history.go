//go:build chaos

package chaos

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Run is one run of a job's command, as the history saw it: from the
// moment its first process started (the time it wrote, by the clock every
// process here shares) to the moment no process that inherited its channel
// was left (end of file on the channel: every process of its tree gone, or
// closed it — the suite's jobs never do).
type Run struct {
	Host, Job, Group string
	Fence            int64
	Slot             string
	Start, End       time.Time
	Escaped          bool      // its channel never closed: a process outlived the unit
	said             time.Time // when its script said it ended with no process left
}

// History collects the runs of a scenario.
type History struct {
	mu     sync.Mutex
	runs   []*Run
	starts []Run // every run as it started
	dir    string
	n      int
	wg     sync.WaitGroup
}

func newHistory(dir string) (*History, error) {
	d, err := os.MkdirTemp(dir, "history-")
	if err != nil {
		return nil, err
	}
	return &History{dir: d}, os.Chmod(d, 0o755)
}

// Channel makes the FIFO a tick's command writes its runs to (jobScript)
// and reads it until the unit is over and every writer has gone; a writer
// still there 5 s after the unit ended marks its run escaped.
func (h *History) Channel(host, job, group string, u func() *Unit) (string, error) {
	h.mu.Lock()
	h.n++
	path := filepath.Join(h.dir, fmt.Sprintf("%s-%s-%d.fifo", host, job, h.n))
	h.mu.Unlock()
	if err := syscall.Mkfifo(path, 0o666); err != nil {
		return "", err
	}
	_ = os.Chmod(path, 0o666)
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer f.Close()
		h.read(f, host, job, group, u)
	}()
	return path, nil
}

func (h *History) read(f *os.File, host, job, group string, u func() *Unit) {
	var cur *Run
	var unitOver time.Time
	var pending []byte
	buf := make([]byte, 4096)
	for {
		if un := u(); un != nil && unitOver.IsZero() {
			select {
			case <-un.done:
				unitOver = time.Now()
			default:
			}
		}
		_ = f.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := f.Read(buf)
		pending = append(pending, buf[:n]...)
		for {
			i := strings.IndexByte(string(pending), '\n')
			if i < 0 {
				break
			}
			line := string(pending[:i])
			pending = pending[i+1:]
			if fields := strings.Fields(line); len(fields) == 2 && fields[0] == "end" && cur != nil {
				ns, _ := strconv.ParseInt(fields[1], 10, 64)
				cur.said = time.Unix(0, ns)
			} else if len(fields) >= 2 && fields[0] == "start" {
				ns, _ := strconv.ParseInt(fields[1], 10, 64)
				cur = &Run{Host: host, Job: job, Group: group, Start: time.Unix(0, ns)}
				if len(fields) > 2 {
					cur.Fence, _ = strconv.ParseInt(fields[2], 10, 64)
				}
				if len(fields) > 3 {
					cur.Slot = fields[3]
				}
				h.mu.Lock()
				h.starts = append(h.starts, *cur)
				h.mu.Unlock()
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF) && cur != nil: // every writer of this run has gone
			cur.End = time.Now()
			if !cur.said.IsZero() && cur.said.Before(cur.End) {
				cur.End = cur.said
			}
			h.add(cur)
			cur = nil
		case errors.Is(err, io.EOF): // no writer now: the next run's, until the unit is over
			if !unitOver.IsZero() && time.Since(unitOver) > 200*time.Millisecond {
				return
			}
			time.Sleep(2 * time.Millisecond)
		case errors.Is(err, os.ErrDeadlineExceeded): // a writer, no data
			if cur != nil && !unitOver.IsZero() && time.Since(unitOver) > 5*time.Second {
				cur.End, cur.Escaped = time.Now(), true
				h.add(cur)
				return
			}
		default:
			return
		}
	}
}

func (h *History) add(r *Run) {
	h.mu.Lock()
	h.runs = append(h.runs, r)
	h.mu.Unlock()
}

// FirstStart is the earliest start of a run that ok accepts, among every
// run started so far (ended or not).
func (h *History) FirstStart(ok func(Run) bool) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var first time.Time
	for _, r := range h.starts {
		if ok(r) && (first.IsZero() || r.Start.Before(first)) {
			first = r.Start
		}
	}
	return first, !first.IsZero()
}

// WaitStart waits (up to d) for a run that ok accepts to start.
func (h *History) WaitStart(d time.Duration, ok func(Run) bool) (time.Time, bool) {
	deadline := time.Now().Add(d)
	for {
		if t, found := h.FirstStart(ok); found {
			return t, true
		}
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close waits for every channel to finish; a run still open after the
// bound is recorded as escaped (its end: now).
func (h *History) Close() { h.wg.Wait() }

// Runs is a copy of the runs recorded, by start.
func (h *History) Runs() []Run {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Run, 0, len(h.runs))
	for _, r := range h.runs {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Overlap is two runs of one lock group at once.
type Overlap struct {
	A, B Run
	For  time.Duration
}

// Overlaps are every pair of runs of one lock group that ran at once.
func Overlaps(runs []Run) []Overlap {
	var out []Overlap
	for i := range runs {
		for j := i + 1; j < len(runs); j++ {
			a, b := runs[i], runs[j]
			if a.Group != b.Group || a.Group == "" {
				continue
			}
			if b.Start.Before(a.End) { // runs are by start: a started first
				end := a.End
				if b.End.Before(end) {
					end = b.End
				}
				out = append(out, Overlap{a, b, end.Sub(b.Start)})
			}
		}
	}
	return out
}

// DoubleSlots are the slots of a floating singleton that ran more than once.
func DoubleSlots(runs []Run) []string {
	n := map[string]int{}
	for _, r := range runs {
		if r.Slot != "" {
			n[r.Job+" "+r.Slot]++
		}
	}
	var out []string
	for k, c := range n {
		if c > 1 {
			out = append(out, fmt.Sprintf("%s ran %d times", k, c))
		}
	}
	sort.Strings(out)
	return out
}
