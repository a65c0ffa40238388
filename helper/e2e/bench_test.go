package e2e

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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
