package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tickgate/tickgate/helper/state"
)

// BenchmarkRunVsFlock times a tick as the units run it, `tickgate-tick run
// JOB -- true` (state and metrics on), against `flock -n LOCK true`, pair by
// pair, whole processes one at a time, and reports the medians, the median
// of the pairs' ratios (target <= 2.0) and the tick's peak RSS. The same
// rounds time what breaks the tick down, each as its median over flock's:
//   - execonly: a Go program that only runs the command; execonly-start: the
//     same given a command that does not exist (the Go runtime's start-up);
//   - depsonly(-start): the same linked with tickgate-tick's libraries
//     (their package initialisation and page faults); depsonly-signal-start:
//     the same handling SIGTERM, SIGINT and SIGHUP as a supervisor must (the
//     first signal.Notify starts the runtime's signal goroutines);
//     depsonly-full-start: linked with the full helper's libraries too;
//   - version: `tickgate-tick --version` (its start-up and CLI, no tick);
//   - full: the same tick by the full helper, `tickgate run` (what a job
//     with fleet coordination or notifications runs); nometrics: the tick
//     with metrics off (on disk they are written beside the fsyncs); unit:
//     the tick as the role's units run it, with its --schedule (when it was
//     due and the next elapse, from the elapses cached in state.json);
//   - host1000: the tick on a host with 999 other jobs' files beside its
//     own (it should cost what the tick does);
//   - tmpfs: the tick with its state, locks and metrics on a tmpfs
//     (/dev/shm), where fsync costs nothing: tickgate - tmpfs is the durable
//     write; tmpfs-nometrics: the same with metrics off;
//   - as root only: user, a non-root job's tick as systemd runs it (tickgate
//     as the supervisor account with its ambient capabilities, the command as
//     the job's user, started through tickgate-exec); user-selfshim, the same
//     with tickgate itself as the shim (no tickgate-exec beside it).
//
// scripts/bench-tick times the main ones in alternating 10-run shell blocks.
func BenchmarkRunVsFlock(b *testing.B) {
	flock, err := exec.LookPath("flock")
	if err != nil {
		b.Skip("flock(1) not installed (util-linux)")
	}
	t := &testing.T{}
	e := steadyEnv(b, t, b.TempDir())
	lock := filepath.Join(e.dir, "flock.lock")
	execOnly, depsOnly, depsFull := buildReference(b, "execonly", ""), buildReference(b, "depsonly", ""), buildReference(b, "depsonly", "full")
	missing := filepath.Join(e.dir, "no-such-command")
	kinds := []benchKind{
		{"tickgate", func() *exec.Cmd { return e.cmd("run", "bench", "--", "true") }, false},
		{"flock", func() *exec.Cmd { return exec.Command(flock, "-n", lock, "true") }, false},
		{"execonly", func() *exec.Cmd { return exec.Command(execOnly, "true") }, false},
		{"execonly-start", func() *exec.Cmd { return exec.Command(execOnly, missing) }, true},
		{"depsonly", func() *exec.Cmd { return exec.Command(depsOnly, "true") }, false},
		{"depsonly-start", func() *exec.Cmd { return exec.Command(depsOnly, missing) }, true},
		{"depsonly-signal-start", func() *exec.Cmd {
			c := exec.Command(depsOnly, missing)
			c.Env = append(os.Environ(), "DEPSONLY_SIGNALS=1")
			return c
		}, true},
		{"depsonly-full-start", func() *exec.Cmd { return exec.Command(depsFull, missing) }, true},
		{"version", func() *exec.Cmd { c := e.cmd("--version"); c.Path, c.Args[0] = tickBin, tickBin; return c }, false},
		{"full", func() *exec.Cmd { c := e.cmd("run", "bench", "--", "true"); c.Path, c.Args[0] = bin, bin; return c }, false},
		{"nometrics", func() *exec.Cmd { return e.cmd("--metrics-dir=", "run", "bench", "--", "true") }, false},
		{"unit", func() *exec.Cmd { return e.cmd("run", "--schedule", "hourly", "unit", "--", "true") }, false},
	}
	for i := 0; i < 50; i++ { // unit's steady state, as bench's
		if out, err := kinds[len(kinds)-1].cmd().CombinedOutput(); err != nil {
			b.Fatalf("unit: %v: %s", err, out)
		}
	}
	h := steadyEnv(b, t, b.TempDir())
	if err := besideOtherJobs(h, 999); err != nil {
		b.Fatal(err)
	}
	kinds = append(kinds, benchKind{"host1000", func() *exec.Cmd { return h.cmd("run", "bench", "--", "true") }, false})
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		shm, err := os.MkdirTemp("/dev/shm", "tickgate-bench-")
		if err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(shm)
		m := steadyEnv(b, t, shm)
		kinds = append(kinds,
			benchKind{"tmpfs", func() *exec.Cmd { return m.cmd("run", "bench", "--", "true") }, false},
			benchKind{"tmpfs-nometrics", func() *exec.Cmd { return m.cmd("--metrics-dir=", "run", "bench", "--", "true") }, false})
	}
	kinds = append(kinds, userTickKinds(b)...)
	times := make([][]time.Duration, len(kinds))
	cpu := make([][]time.Duration, len(kinds)) // user + system, the command's children included
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, kind := range kinds {
			c := kind.cmd()
			start := time.Now()
			if err := c.Run(); err != nil && !kind.fails {
				b.Fatalf("%s: %v", kind.name, err)
			}
			times[k] = append(times[k], time.Since(start))
			if c.ProcessState != nil {
				cpu[k] = append(cpu[k], c.ProcessState.UserTime()+c.ProcessState.SystemTime())
			}
		}
	}
	b.StopTimer()
	ratios := make([]float64, b.N)
	var tg, fl time.Duration
	for i := range ratios {
		ratios[i] = float64(times[0][i]) / float64(times[1][i])
		tg += times[0][i]
		fl += times[1][i]
	}
	med := map[string]time.Duration{}
	for k, kind := range kinds {
		med[kind.name] = median(times[k])
		if len(cpu[k]) > 0 {
			med[kind.name+"-cpu"] = median(cpu[k])
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(med["tickgate"]), "tickgate-ms")
	b.ReportMetric(ms(med["flock"]), "flock-ms")
	b.ReportMetric(medianF(ratios), "ratio-median")
	b.ReportMetric(float64(tg)/float64(fl), "ratio-of-means")
	for _, kind := range kinds[2:] {
		b.ReportMetric(float64(med[kind.name])/float64(med["flock"]), kind.name+"-x-flock")
	}
	b.ReportMetric(ms(med["tickgate-cpu"]), "tickgate-cpu-ms")
	b.ReportMetric(ms(med["host1000-cpu"]), "host1000-cpu-ms")
	b.ReportMetric(peakRSSKB(b, e), "peak-RSS-KB")
	b.ReportMetric(0, "ns/op")
	if b.N > 1 { // not the 1-round warm-up run
		logBreakdown(b, med)
	}
}

// steadyEnv lays out a host's tickgate directories under dir and runs job
// bench 50 times: a tick on a job with 50 runs behind it is the steady state.
func steadyEnv(b *testing.B, t *testing.T, dir string) *env {
	e := newEnv(t)
	e.dir = dir
	e.stateDir, e.lockDir, e.gate, e.metricDir = dir+"/state", dir+"/lock", dir+"/gate.json", dir+"/metrics"
	for i := 0; i < 50; i++ {
		if err := e.cmd("run", "bench", "--", "true").Run(); err != nil {
			b.Fatal(err)
		}
	}
	return e
}

// besideOtherJobs gives e's host n other jobs' files, as a host with n+1
// jobs has them: a state directory each, their lock group and pin files,
// their metrics files. A tick must not cost more for them.
func besideOtherJobs(e *env, n int) error {
	for i := range n {
		job := fmt.Sprintf("other%04d", i)
		if err := os.MkdirAll(filepath.Join(e.stateDir, job), 0o755); err != nil {
			return err
		}
		for _, p := range []string{e.lockDir + "/" + job + ".lock", e.lockDir + "/" + job + ".pin", e.metricDir + "/tickgate_" + job + ".prom"} {
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// afterRun are lines TestMain prints once every test and benchmark has run.
var afterRun []string

// logBreakdown prints where a tick's time goes, from the medians of the
// kinds BenchmarkRunVsFlock timed: each part a difference of two of them,
// in ms and in flock's times, on stdout (make bench greps "breakdown").
func logBreakdown(b *testing.B, med map[string]time.Duration) {
	// Printed by TestMain after the run: testing.B keeps only the first 10
	// lines of a benchmark's log, and stdout meanwhile would split the
	// benchmark's result line.
	logf := func(format string, a ...any) { afterRun = append(afterRun, fmt.Sprintf(format, a...)) }
	if _, ok := med["tmpfs"]; !ok {
		logf("breakdown: not measured (no /dev/shm)")
		return
	}
	fl := float64(med["flock"])
	child := med["execonly"] - med["execonly-start"]
	parts := []struct {
		what string
		d    time.Duration
	}{
		{"Go runtime start-up (execonly-start)", med["execonly-start"]},
		{"+ tickgate-tick's libraries' package initialisation: urfave/cli, go-systemd's journal (depsonly-start - execonly-start)", med["depsonly-start"] - med["execonly-start"]},
		{"+ handling signals, as a supervisor must (depsonly-signal-start - depsonly-start)", med["depsonly-signal-start"] - med["depsonly-start"]},
		{"+ tickgate-tick's own start-up and CLI (version - depsonly-signal-start)", med["version"] - med["depsonly-signal-start"]},
		{"+ starting and reaping the command (execonly - execonly-start)", child},
		{"+ the tick's work: gate, markers, locks, state read and write (tmpfs-nometrics - version - command)", med["tmpfs-nometrics"] - med["version"] - child},
		{"+ the metrics file (tmpfs - tmpfs-nometrics)", med["tmpfs"] - med["tmpfs-nometrics"]},
		{"  (on disk, written beside the durable write's fsyncs: tickgate - nometrics)", med["tickgate"] - med["nometrics"]},
		{"+ the durable write's fsyncs (tickgate - tmpfs)", med["tickgate"] - med["tmpfs"]},
		{"= the tick (tickgate-tick)", med["tickgate"]},
		{"the same tick with the timer's --schedule, as the role's units run it (unit)", med["unit"]},
		{"the same tick by the full helper, as jobs with fleet coordination or notifications run it (full)", med["full"]},
		{"  of which the full helper's other libraries: pgx, D-Bus, net/http (depsonly-full-start - depsonly-start)", med["depsonly-full-start"] - med["depsonly-start"]},
		{"the same tick beside 999 other jobs' state, lock and metrics files (host1000)", med["host1000"]},
		{"the issue's budget, no library at all: execonly + durable write", med["execonly"] + med["tickgate"] - med["tmpfs"]},
		{"floor with these libraries: depsonly-start + command + durable write", med["depsonly-start"] + child + med["tickgate"] - med["tmpfs"]},
		{"floor with these libraries and signal handling: depsonly-signal-start + command + durable write", med["depsonly-signal-start"] + child + med["tickgate"] - med["tmpfs"]},
	}
	logf("breakdown of a tick (medians of %d rounds; flock %.2f ms):", b.N, fl/1e6)
	for _, p := range parts {
		logf("breakdown: %6.2f ms %5.2fx  %s", float64(p.d)/1e6, float64(p.d)/fl, p.what)
	}
	logf("breakdown: CPU (user + system, median) of the tick %.2f ms, beside 999 other jobs' files %.2f ms",
		float64(med["tickgate-cpu"])/1e6, float64(med["host1000-cpu"])/1e6)
	if _, ok := med["user"]; !ok {
		logf("breakdown: a non-root job's tick not measured (needs root)")
		return
	}
	logf("breakdown: %6.2f ms %5.2fx  a non-root job's tick: the supervisor account runs the command as the job's user through tickgate-exec (user)", float64(med["user"])/1e6, float64(med["user"])/fl)
	logf("breakdown: %6.2f ms %5.2fx  the same with tickgate-tick itself as the shim (user-selfshim)", float64(med["user-selfshim"])/1e6, float64(med["user-selfshim"])/fl)
}

// userTickKinds sets up a non-root job's tick the way the role lays it out
// and systemd runs it (as security_test.go does): layOutForSupervisor,
// tickgate run as the supervisor account with
// CAP_SETUID, CAP_SETGID and CAP_KILL as ambient capabilities, --user the
// job's. user starts the command through tickgate-exec beside tickgate-tick,
// user-selfshim through a copy of tickgate-tick with no tickgate-exec beside it.
// Nothing without root.
func userTickKinds(b *testing.B) []benchKind {
	if os.Geteuid() != 0 {
		return nil
	}
	root := b.TempDir()
	u := &env{dir: root, stateDir: root + "/state", lockDir: root + "/lock", gate: root + "/gate.json", metricDir: root + "/metrics"}
	err := u.layOutForSupervisor(map[string]int{"bench": uidA})
	self := filepath.Join(root, "selfshim")
	var helperBytes []byte
	if err == nil {
		helperBytes, err = os.ReadFile(tickBin)
	}
	if err == nil {
		err = os.Mkdir(self, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(self, "tickgate-tick"), helperBytes, 0o755)
	}
	if err != nil {
		b.Fatal(err)
	}
	tick := func(helper string) func() *exec.Cmd {
		return func() *exec.Cmd {
			c := u.cmd("run", "--user", strconv.Itoa(uidA), "bench", "--", "true")
			c.Path, c.Args[0] = helper, helper
			c.SysProcAttr = &syscall.SysProcAttr{
				Credential:  &syscall.Credential{Uid: supUID, Gid: supUID, Groups: []uint32{}},
				AmbientCaps: []uintptr{unix.CAP_SETUID, unix.CAP_SETGID, unix.CAP_KILL},
			}
			return c
		}
	}
	kinds := []benchKind{{"user", tick(tickBin), false}, {"user-selfshim", tick(filepath.Join(self, "tickgate-tick")), false}}
	for _, k := range kinds {
		for i := 0; i < 50; i++ { // the same 50 runs of history as the others
			if out, err := k.cmd().CombinedOutput(); err != nil {
				b.Fatalf("%s: %v: %s", k.name, err, out)
			}
		}
	}
	return kinds
}

// benchKind is one process BenchmarkRunVsFlock times in each round.
type benchKind struct {
	name  string
	cmd   func() *exec.Cmd
	fails bool // exits non-zero on purpose
}

// buildReference builds testdata/NAME (a benchmark reference program), with
// tag if not empty, the way `make build` builds tickgate: with urfave/cli's
// docs left out too, or the reference pays blackfriday's package
// initialisation (~0.25 ms) that tickgate does not.
func buildReference(b *testing.B, name, tag string) string {
	out := filepath.Join(b.TempDir(), name+tag)
	c := exec.Command("go", "build", "-tags", "urfave_cli_no_docs,"+tag, "-trimpath", "-buildvcs=false", "-ldflags", "-s -w", "-o", out, "./testdata/"+name)
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := c.CombinedOutput(); err != nil {
		b.Fatalf("building %s: %v\n%s", name, err, msg)
	}
	return out
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianF(f []float64) float64 {
	s := slices.Clone(f)
	slices.Sort(s)
	return s[len(s)/2]
}

// peakRSSKB measures one tick's peak RSS with GNU time. The rusage that Go's
// wait4 returns is no use here: Go starts children with CLONE_VM, and Linux
// carries the parent's RSS high-water mark across exec into the child's.
func peakRSSKB(b *testing.B, e *env) float64 {
	gnuTime, err := exec.LookPath("/usr/bin/time")
	if err != nil {
		b.Log("peak RSS not measured: /usr/bin/time (Debian package time) not installed")
		return 0
	}
	c := e.cmd("run", "bench", "--", "true")
	c.Args = append([]string{gnuTime, "-f", "%M", c.Path}, c.Args[1:]...)
	c.Path = gnuTime
	out, err := c.CombinedOutput()
	if err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	kb, err := strconv.ParseFloat(lines[len(lines)-1], 64)
	if err != nil {
		b.Fatalf("GNU time output %q: %v", out, err)
	}
	return kb
}

func benchEnv(b *testing.B) *env {
	e := &env{t: &testing.T{}, dir: b.TempDir()}
	e.stateDir, e.lockDir, e.gate, e.metricDir = e.dir+"/state", e.dir+"/lock", e.dir+"/gate.json", e.dir+"/metrics"
	return e
}

// fillJobs puts n jobs' state on disk, each with 50 runs of history (the
// steady state): one job runs 50 times, the rest are copies of its
// state.json under their own names (n processes x 50 runs would take
// minutes). Every fourth job's last run failed.
func fillJobs(b *testing.B, e *env, n int) {
	for i := 0; i < 50; i++ {
		if err := e.cmd("run", "seed", "--", "true").Run(); err != nil {
			b.Fatal(err)
		}
	}
	seed, err := os.ReadFile(filepath.Join(e.stateDir, "seed", "state.json"))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("job%04d", i)
		data := bytes.Replace(seed, []byte(`"job": "seed"`), []byte(`"job": "`+name+`"`), 1)
		if i%4 == 0 {
			data = bytes.Replace(data, []byte(`"consecutive_failures": 0`), []byte(`"consecutive_failures": 1`), 1)
		}
		dir := filepath.Join(e.stateDir, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "state.json"), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatusJSON1000 times `tickgate status --json` (each job's last
// 10 runs included, the default) and `tickgate drain` with nothing running,
// over 1000 jobs' state on disk (target <= 150 ms each). Systemd is asked
// too, as by default: on a machine without a system bus that fails fast and
// the timer columns stay empty (scripts/bench-deploy times both on a real
// host with 1000 timers).
func BenchmarkStatusJSON1000(b *testing.B) {
	e := benchEnv(b)
	fillJobs(b, e, 1000)
	b.ResetTimer()
	var status, drain time.Duration
	for i := 0; i < b.N; i++ {
		c := e.cmd("status", "--json")
		var out bytes.Buffer
		c.Stdout = &out
		start := time.Now()
		if err := c.Run(); err != nil {
			b.Fatal(err)
		}
		status += time.Since(start)
		if n := strings.Count(out.String(), `"job": "job`); n != 1000 {
			b.Fatalf("status listed %d jobs, want 1000", n)
		}
		d := e.cmd("drain", "--timeout", "10s")
		start = time.Now()
		if err := d.Run(); err != nil {
			b.Fatal(err)
		}
		drain += time.Since(start)
	}
	b.ReportMetric(float64(status.Microseconds())/float64(b.N)/1000, "ms/status")
	b.ReportMetric(float64(drain.Microseconds())/float64(b.N)/1000, "ms/drain-idle")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkDrainReaction measures how long `tickgate drain` takes to return
// after the last running job's helper has exited, with 1000 jobs' state on
// disk (target <= 200 ms).
func BenchmarkDrainReaction(b *testing.B) {
	e := benchEnv(b)
	fillJobs(b, e, 1000)
	b.ResetTimer()
	var total, worst time.Duration
	for i := 0; i < b.N; i++ {
		job := e.cmd("run", "long", "--", "sleep", "0.3")
		if err := job.Start(); err != nil {
			b.Fatal(err)
		}
		for {
			if st, _ := (state.Store{Dir: e.stateDir}).Load("long"); st != nil && st.Result == state.Running && st.PID > 0 {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		d := e.cmd("drain", "--timeout", "30s")
		if err := d.Start(); err != nil {
			b.Fatal(err)
		}
		drained := make(chan time.Time, 1)
		go func() { _ = d.Wait(); drained <- time.Now() }()
		_ = job.Wait()
		ended := time.Now()
		reaction := (<-drained).Sub(ended)
		total += reaction
		if reaction > worst {
			worst = reaction
		}
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms-mean-reaction")
	b.ReportMetric(float64(worst.Microseconds())/1000, "ms-worst-reaction")
	b.ReportMetric(0, "ns/op")
}
