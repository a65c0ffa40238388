//go:build chaos

package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Suite is one run of the fault-injection suite: its directory, its
// clusters' credentials, the helper under test and the table it prints.
type Suite struct {
	Dir                      string
	bin                      string // PostgreSQL's
	Helper                   string // the tickgate binary under test
	cgroups                  string
	SuperPW, AdminPW, TickPW string
	TTL                      time.Duration
	Main                     *Cluster       // the shared primary (also on the namespace's link)
	track                    func(*Cluster) // stopped at the end, whatever happened

	mu    sync.Mutex
	rows  []Row
	units int
}

// Margin is what liveness may take beyond the lease: the contenders' polling
// (every 200 ms), a connection, a tick's start.
const Margin = 2 * time.Second

// Host is one host of the fleet: its own state, locks and gate, its own
// login role, its DSN (to the main cluster unless given), and whether its
// ticks run in the partitionable network namespace.
type Host struct {
	Name    string
	Dir     string
	InNetns bool
	s       *Suite
}

// NewHost makes a host whose ticks reach the database at dsn.
func (s *Suite) NewHost(name, dsn string, inNetns bool) (*Host, error) {
	h := &Host{Name: name, Dir: filepath.Join(s.Dir, "hosts", name+fmt.Sprint(time.Now().UnixNano())), InNetns: inNetns, s: s}
	for _, d := range []string{"state", "lock", "data", "metrics"} {
		if err := os.MkdirAll(filepath.Join(h.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		"fleet-tick.dsn": dsn + "\n",
		"gate.json":      `{"closed": false, "reason": "", "token": "", "since": null, "until": null, "rollout_at": null, "paused": {}}`,
	}
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(h.Dir, f), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// TickOpts is one tick: a job, its fleet lock group ("" for none), what
// its command does, and more of the helper's flags.
type TickOpts struct {
	Job, Group string
	// Mode of the command (jobScript): plain (exits after Seconds; a
	// grandchild sleeps as long), ignore (it and its grandchild ignore
	// SIGTERM), slow (a 5 s graceful stop on SIGTERM), fenced (writes
	// through a fence store every 50 ms until killed), exit5 (fails with 5
	// after Seconds).
	Mode    string
	Seconds float64
	Store   string
	Flags   []string
	Env     []string
	Every   time.Duration // Contend's period (200 ms)
	// TTL is the tick's fleet lease (0: the suite's, s.TTL); its watchdog
	// is a sixth of it, as the deploy makes it.
	TTL time.Duration
}

// jobScript is every test job: it opens the history channel on fd 9 (its
// children inherit it, so the channel's end of file is its tree's end),
// says when it started with its fence and slot, then does what its mode
// says. Where it ends by itself with no process left it says when, by the
// clock it started by: under load the suite may read the end of file late,
// which would show overlaps that never were (a killed job's end is the end
// of file, late if anything: never an overlap missed).
const jobScript = `fifo=$1 secs=$2 mode=$3 store=$4 tg=$5
exec 9>"$fifo"
echo "start $(date +%s%N) ${TICKGATE_FENCE:-0} ${TICKGATE_FLEET_SLOT:-}" >&9
# Said only where the script's last process ends with it: every child
# waited for, none left holding fd 9.
ended() { echo "end $(date +%s%N)" >&9; }
case $mode in
exit5) sleep "$secs"; ended; exit 5 ;;
ignore) trap '' TERM ;;
slow) trap 'sleep 5; exit 0' TERM ;;
fenced)
  trap '' TERM
  n=$(( ${secs%.*} * 20 ))
  while [ "$n" -gt 0 ]; do
    flock "$store.resource" sh -c '"$2" fence check --store "$1" >/dev/null 2>&1 && echo "$TICKGATE_FENCE $(date +%s%N)" >>"$1.log"' sh "$store" "$tg"
    sleep 0.05; n=$((n - 1))
  done
  ended; exit 0 ;;
esac
( [ "$mode" = ignore ] && trap '' TERM; exec sleep "$secs" ) &
wait && ended
`

// Tick starts one tick of o on h as a unit, its command's runs recorded in
// hist.
func (h *Host) Tick(hist *History, o TickOpts) (*Unit, error) {
	s := h.s
	s.mu.Lock()
	s.units++
	name := fmt.Sprintf("%s-%s-%d", h.Name, o.Job, s.units)
	s.mu.Unlock()
	var u *Unit
	var umu sync.Mutex
	fifo, err := hist.Channel(h.Name, o.Job, o.Group, func() *Unit { umu.Lock(); defer umu.Unlock(); return u })
	if err != nil {
		return nil, err
	}
	argv := []string{s.Helper, "run", "--fleet", "--kill-after", "2s"}
	ttl := s.TTL
	if o.TTL > 0 {
		ttl = o.TTL
	}
	watchdog := time.Duration(0)
	if o.Group != "" {
		argv = append(argv, "--lock-scope", "fleet", "--lock", o.Group)
		watchdog = ttl / 6
	}
	argv = append(argv, o.Flags...)
	argv = append(argv, o.Job, "--", "/bin/sh", "-c", jobScript, "sh", fifo, fmt.Sprint(o.Seconds), o.Mode, o.Store, s.Helper)
	if h.InNetns {
		argv = append(inNetns(), argv...)
	}
	env := append([]string{
		"TICKGATE_STATE_ROOT=" + filepath.Join(h.Dir, "state"), "TICKGATE_DATA_ROOT=" + filepath.Join(h.Dir, "data"),
		"TICKGATE_LOCK_DIR=" + filepath.Join(h.Dir, "lock"), "TICKGATE_GATE=" + filepath.Join(h.Dir, "gate.json"),
		"TICKGATE_METRICS_DIR=" + filepath.Join(h.Dir, "metrics"), "TICKGATE_FLEET_DSN_FILE=" + filepath.Join(h.Dir, "fleet-tick.dsn"),
		"TICKGATE_FLEET_HOST=" + h.Name, "TICKGATE_FLEET_LEASE_TTL=" + ttl.String(),
	}, o.Env...)
	umu.Lock()
	u, err = s.StartUnit(name, argv, env, watchdog)
	umu.Unlock()
	return u, err
}

// Contend ticks o on h every o.Every (200 ms: a timer firing often, or many
// hosts waiting for the group) until stop is called; stop returns every
// unit.
func (h *Host) Contend(hist *History, o TickOpts) (stop func() []*Unit) {
	if o.Every == 0 {
		o.Every = 200 * time.Millisecond
	}
	done, finished := make(chan struct{}), make(chan struct{})
	var units []*Unit
	go func() {
		defer close(finished)
		for {
			u, err := h.Tick(hist, o)
			if err == nil {
				units = append(units, u)
				u.Wait()
			}
			select {
			case <-done:
				return
			case <-time.After(o.Every):
			}
		}
	}()
	return func() []*Unit {
		close(done)
		<-finished
		return units
	}
}

// Row is one line of the suite's table.
type Row struct {
	Fault       string
	Rounds      int
	Runs        int
	Overlaps    int
	MaxOverlap  time.Duration
	DoubleSlots int
	StaleWrites int
	Liveness    time.Duration // the worst round's; 0: not measured
	Bound       time.Duration
	Promise     string // what the docs promise
	Note        string
	Failed      bool
}

func (s *Suite) addRow(r Row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = append(s.rows, r)
}

// Table is the suite's figures, one row per fault.
func (s *Suite) Table() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "\nfleet fault injection (lease %s; liveness bound: lease + %s; runs: commands that started)\n", s.TTL, Margin)
	fmt.Fprintf(&b, "%-48s %6s %5s %8s %12s %7s %6s %9s %9s  %s\n", "fault", "rounds", "runs", "overlaps", "max overlap", "2xslot", "stale", "liveness", "bound", "promise / note")
	for _, r := range s.rows {
		live, bound, over := "-", "-", "-"
		if r.Liveness > 0 {
			live = fmt.Sprintf("%.2fs", r.Liveness.Seconds())
		}
		if r.Bound > 0 {
			bound = fmt.Sprintf("%.2fs", r.Bound.Seconds())
		}
		if r.MaxOverlap > 0 {
			over = fmt.Sprintf("%.3fs", r.MaxOverlap.Seconds())
		}
		mark := ""
		if r.Failed {
			mark = "FAILED: "
		}
		fmt.Fprintf(&b, "%-48s %6d %5d %8d %12s %7d %6d %9s %9s  %s%s%s\n", r.Fault, r.Rounds, r.Runs, r.Overlaps, over, r.DoubleSlots, r.StaleWrites,
			live, bound, mark, r.Promise, note(r.Note))
	}
	return b.String()
}

func note(n string) string {
	if n == "" {
		return ""
	}
	return "; " + n
}
