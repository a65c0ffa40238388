//go:build chaos

package chaos

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// BenchmarkFleetLockRace500: 500 ticks of 50 hosts (each its own login
// role) race one fleet lock group in the same instant against a server with
// max_connections=100. Reports overlaps and runs without the lock (both
// must be 0), how the ticks ended, the most tick connections at once, and
// each tick's decision time (start to its command's start, or to its exit
// when it did not run) at p50 and p99.
func BenchmarkFleetLockRace500(b *testing.B) {
	if setErr != nil {
		b.Skip(setErr)
	}
	s := suite
	var names []string
	for i := 0; i < 50; i++ {
		names = append(names, fmt.Sprintf("r%02d", i))
	}
	c := s.sideCluster(b, fmt.Sprintf("race%d", time.Now().UnixNano()%1e6), names, func(c *Cluster) { c.Options = []string{"-c max_connections=100"} })
	var err error
	hosts := make([]*Host, len(names))
	for i, n := range names {
		if hosts[i], err = s.NewHost(n, s.DSN(hostRole(n), c.Addr()), false); err != nil {
			b.Fatal(err)
		}
	}
	for round := 0; round < b.N; round++ {
		hist, err := newHistory(s.Dir)
		if err != nil {
			b.Fatal(err)
		}
		group := fmt.Sprintf("race500-%d", round)
		stop := make(chan struct{})
		var peak int
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				var n int
				if s.queryRow(c.Addr(), "SELECT count(*) FROM pg_stat_activity WHERE usename LIKE 'tickgate_tick_%'", nil, &n) == nil && n > peak {
					peak = n
				}
			}
		}()
		type tick struct {
			u     *Unit
			start time.Time
		}
		ticks := make([]tick, 500)
		var wg sync.WaitGroup
		gun := make(chan struct{})
		for k := range ticks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gun
				start := time.Now()
				u, err := hosts[k%50].Tick(hist, TickOpts{Job: fmt.Sprintf("racer%d", k), Group: group, Mode: "plain", Seconds: 0.2})
				if err != nil {
					b.Error(err)
					return
				}
				ticks[k] = tick{u, start}
				u.Wait()
			}()
		}
		close(gun)
		wg.Wait()
		close(stop)
		hist.Close()
		runs := hist.Runs()
		started := map[string]time.Time{}
		unlocked := 0
		for _, r := range runs {
			started[r.Job] = r.Start
			if r.Fence <= 0 {
				unlocked++
			}
		}
		codes := map[int]int{}
		var lat []time.Duration
		for k, t := range ticks {
			if t.u == nil {
				continue
			}
			codes[t.u.Exit()]++
			if at, ok := started[fmt.Sprintf("racer%d", k)]; ok {
				lat = append(lat, at.Sub(t.start))
			} else {
				lat = append(lat, t.u.MainEnded.Sub(t.start))
			}
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		overlaps := len(Overlaps(runs))
		for i, o := range Overlaps(runs) {
			if i < 8 {
				b.Logf("overlap %s: %s fence %d %s..%s / %s fence %d from %s", o.For, o.A.Host, o.A.Fence, o.A.Start.Format("05.000000"), o.A.End.Format("05.000000"),
					o.B.Host, o.B.Fence, o.B.Start.Format("05.000000"))
			}
		}
		if overlaps > 0 || unlocked > 0 {
			b.Errorf("%d overlaps, %d runs without the lock", overlaps, unlocked)
		}
		b.ReportMetric(float64(overlaps), "overlaps")
		b.ReportMetric(float64(unlocked), "unlocked-runs")
		b.ReportMetric(float64(len(runs)), "runs")
		b.ReportMetric(float64(codes[75]), "skipped-busy")
		b.ReportMetric(float64(codes[78]), "failed-closed")
		b.ReportMetric(float64(peak), "peak-conns")
		b.ReportMetric(lat[len(lat)/2].Seconds(), "p50-s")
		b.ReportMetric(lat[len(lat)*99/100].Seconds(), "p99-s")
		b.ReportMetric(0, "ns/op")
	}
}
