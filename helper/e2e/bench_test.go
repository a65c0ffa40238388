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
	"testing"
	"time"

	"github.com/tickgate/tickgate/helper/state"
)

// BenchmarkRunVsFlock times `tickgate run JOB -- true` (state and metrics
// on) against `flock -n LOCK true`, pair by pair, whole processes one at a
// time, and reports the medians, the median of the pairs' ratios (target
// <= 2.0) and tickgate's peak RSS. The same pairs time two references that
// explain the floor: execonly, a Go program that only runs the command, and
// depsonly, the same linked with tickgate's libraries (their package
// initialisation), and `tickgate --version` (the whole start-up, no tick).
// scripts/bench-tick times the same in alternating 10-run shell blocks.
func BenchmarkRunVsFlock(b *testing.B) {
	flock, err := exec.LookPath("flock")
	if err != nil {
		b.Skip("flock(1) not installed (util-linux)")
	}
	t := &testing.T{}
	e := newEnv(t)
	e.dir = b.TempDir()
	e.stateDir, e.lockDir, e.gate, e.metricDir = e.dir+"/state", e.dir+"/lock", e.dir+"/gate.json", e.dir+"/metrics"
	lock := filepath.Join(e.dir, "flock.lock")
	execOnly, depsOnly := buildReference(b, "execonly"), buildReference(b, "depsonly")
	// Fill the job's history first: a tick on a job with 50 runs behind it
	// is the steady state.
	for i := 0; i < 50; i++ {
		if err := e.cmd("run", "bench", "--", "true").Run(); err != nil {
			b.Fatal(err)
		}
	}
	kinds := []struct {
		name string
		cmd  func() *exec.Cmd
	}{
		{"tickgate", func() *exec.Cmd { return e.cmd("run", "bench", "--", "true") }},
		{"flock", func() *exec.Cmd { return exec.Command(flock, "-n", lock, "true") }},
		{"execonly", func() *exec.Cmd { return exec.Command(execOnly, "true") }},
		{"depsonly", func() *exec.Cmd { return exec.Command(depsOnly, "true") }},
		{"version", func() *exec.Cmd { return e.cmd("--version") }},
	}
	times := make([][]time.Duration, len(kinds))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, kind := range kinds {
			c := kind.cmd()
			start := time.Now()
			if err := c.Run(); err != nil {
				b.Fatalf("%s: %v", kind.name, err)
			}
			times[k] = append(times[k], time.Since(start))
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
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(median(times[0])), "tickgate-ms")
	b.ReportMetric(ms(median(times[1])), "flock-ms")
	b.ReportMetric(medianF(ratios), "ratio-median")
	b.ReportMetric(float64(tg)/float64(fl), "ratio-of-means")
	for k := 2; k < len(kinds); k++ {
		b.ReportMetric(float64(median(times[k]))/float64(median(times[1])), kinds[k].name+"-x-flock")
	}
	b.ReportMetric(peakRSSKB(b, e), "peak-RSS-KB")
	b.ReportMetric(0, "ns/op")
}

// buildReference builds testdata/NAME (a benchmark reference program) the
// way `make build` builds tickgate.
func buildReference(b *testing.B, name string) string {
	out := filepath.Join(b.TempDir(), name)
	c := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w", "-o", out, "./testdata/"+name)
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
	c.Args = append([]string{gnuTime, "-f", "%M", bin}, c.Args[1:]...)
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
