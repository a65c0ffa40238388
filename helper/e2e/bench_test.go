package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/helper/state"
)

// BenchmarkRunVsFlock runs `tickgate run JOB -- true` (state and metrics on)
// and `flock -n LOCK true` alternately, side by side, and reports each one's
// mean wall time per tick, their ratio (target <= 1.5) and tickgate's peak RSS.
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
	var tgTotal, flTotal time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := e.cmd("run", "bench", "--", "true")
		start := time.Now()
		if err := c.Run(); err != nil {
			b.Fatal(err)
		}
		tgTotal += time.Since(start)
		f := exec.Command(flock, "-n", lock, "true")
		start = time.Now()
		if err := f.Run(); err != nil {
			b.Fatal(err)
		}
		flTotal += time.Since(start)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(tgTotal.Microseconds())/n/1000, "tickgate-ms/tick")
	b.ReportMetric(float64(flTotal.Microseconds())/n/1000, "flock-ms/tick")
	b.ReportMetric(float64(tgTotal)/float64(flTotal), "ratio")
	b.ReportMetric(peakRSSKB(b, e), "peak-RSS-KB")
	b.ReportMetric(0, "ns/op")
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

// BenchmarkStatusJSON200 times `tickgate status --json` over 200 jobs'
// state on disk (target <= 150 ms). Systemd is asked too, as by default: on
// a machine without a system bus that fails fast and the timer columns stay
// empty.
func BenchmarkStatusJSON200(b *testing.B) {
	e := benchEnv(b)
	for i := 0; i < 200; i++ {
		code := []string{"true", "false"}[i%2]
		if err := e.cmd("run", "--halt-after", "1", fmt.Sprintf("job%03d", i), "--", code).Run(); exitCode(err) > 1 {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		c := e.cmd("status", "--json")
		var out bytes.Buffer
		c.Stdout = &out
		start := time.Now()
		if err := c.Run(); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		if n := strings.Count(out.String(), `"job": "job`); n != 200 {
			b.Fatalf("status listed %d jobs, want 200", n)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/status")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkDrainReaction measures how long `tickgate drain` takes to return
// after the last running job's helper has exited (target <= 200 ms).
func BenchmarkDrainReaction(b *testing.B) {
	e := benchEnv(b)
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
