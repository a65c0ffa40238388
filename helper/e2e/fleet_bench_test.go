package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tickgate/tickgate/helper/fleet"
	"github.com/tickgate/tickgate/helper/fleet/fleettest"
)

// benchFleetEnv is one "host" whose fleet DSN files point at this package's
// benchmark database.
func benchFleetEnv(b *testing.B) (*env, fleettest.DSNs) {
	d := fleettest.DB(b, "bench", func(dsn string) error {
		_, err := fleet.Migrate(context.Background(), fleet.Options{DSN: dsn}, "tickgate_tick", fleet.Registration{})
		return err
	})
	e := newEnv(&testing.T{})
	e.dir = b.TempDir()
	e.stateDir, e.lockDir, e.gate, e.metricDir = e.dir+"/state", e.dir+"/lock", e.dir+"/gate.json", e.dir+"/metrics"
	for file, dsn := range map[string]string{"fleet-tick.dsn": d.Tick, "fleet-admin.dsn": d.Admin} {
		if err := os.WriteFile(filepath.Join(e.dir, file), []byte(dsn), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	e.extraEnv = []string{"TICKGATE_FLEET_HOST=bench"}
	return e, d
}

// BenchmarkFleetTick: a tick with the fleet gate and a fleet lock group
// against a host-only tick, alternately, one pair per iteration.
func BenchmarkFleetTick(b *testing.B) {
	e, _ := benchFleetEnv(b)
	var host, fl time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, args := range [][]string{{"run", "hostonly", "--", "true"}, {"run", "--lock-scope", "fleet", "fleetjob", "--", "true"}} {
			c := e.cmd(args...)
			start := time.Now()
			if out, err := c.CombinedOutput(); err != nil {
				b.Fatalf("%v: %v %s", args, err, out)
			}
			if args[1] == "hostonly" {
				host += time.Since(start)
			} else {
				fl += time.Since(start)
			}
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(host.Microseconds())/n/1000, "host-ms/tick")
	b.ReportMetric(float64(fl.Microseconds())/n/1000, "fleet-ms/tick")
	b.ReportMetric(float64(fl)/float64(host), "ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkFleetLockRace200: 200 helper processes started at once race one
// fleet lock group (the winner holds it 200 ms). Reports how many held it at
// once (must be 1), each helper's decision latency (start to exit) at p50
// and p99, and the most server connections in use.
func BenchmarkFleetLockRace200(b *testing.B) {
	e, d := benchFleetEnv(b)
	const n = 200
	mutex := filepath.Join(e.dir, "mutex")
	script := `mkdir "$0" 2>/dev/null || { echo OVERLAP; exit 9; }; sleep 0.2; rmdir "$0"`
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		lat := make([]time.Duration, n)
		codes := make([]int, n)
		outs := make([]string, n)
		stop := make(chan struct{})
		peak := make(chan int, 1)
		go func() { peak <- peakConnections(d.Super, stop) }()
		start := make(chan struct{})
		for k := 0; k < n; k++ {
			wg.Add(1)
			go func(k int) {
				defer wg.Done()
				// 200 jobs sharing one lock group (one job never runs 200 times
				// at once under systemd).
				c := e.cmd("run", "--lock-scope", "fleet", "--lock", "race200", fmt.Sprintf("racer%d", k), "--", "sh", "-c", script, mutex)
				<-start
				t0 := time.Now()
				out, _ := c.CombinedOutput()
				lat[k], codes[k], outs[k] = time.Since(t0), c.ProcessState.ExitCode(), string(out)
			}(k)
		}
		close(start)
		wg.Wait()
		close(stop)
		conns := <-peak
		holders, overlaps := 0, 0
		for k := range codes {
			switch {
			case strings.Contains(outs[k], "OVERLAP"):
				overlaps++
			case codes[k] == 0:
				holders++
			case codes[k] != 75:
				b.Fatalf("racer %d: exit %d: %s", k, codes[k], outs[k])
			}
		}
		if overlaps != 0 {
			b.Fatalf("%d racers held the fleet lock at once", overlaps+1)
		}
		sort.Slice(lat, func(a, c int) bool { return lat[a] < lat[c] })
		b.ReportMetric(float64(1+overlaps), "holders-at-once")
		b.ReportMetric(float64(holders), "runs")
		b.ReportMetric(float64(lat[n/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[n*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(conns), "peak-server-conns")
		b.ReportMetric(0, "ns/op")
	}
}

// peakConnections samples tickgate's connections to the server until stop.
func peakConnections(dsn string, stop <-chan struct{}) int {
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		return -1
	}
	defer conn.Close(context.Background())
	peak := 0
	for {
		var n int
		_ = conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'tickgate %'").Scan(&n)
		if n > peak {
			peak = n
		}
		select {
		case <-stop:
			return peak
		case <-time.After(5 * time.Millisecond):
		}
	}
}
