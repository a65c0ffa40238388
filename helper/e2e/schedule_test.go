package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/helper/state"
)

// every2s is a schedule systemd-analyze computes for real: every 2 seconds.
const every2s = "*:*:0/2"

// untilPast sleeps until t has passed by extra.
func untilPast(t time.Time, extra time.Duration) {
	time.Sleep(time.Until(t.Add(extra)))
}

// A run that would start more than --start-deadline after it was due is
// skipped: after "downtime" (the timer firing late for a missed elapse, as
// Persistent= does) and after a long lock wait; on time it runs.
func TestStartDeadline(t *testing.T) {
	e := newEnv(t)
	args := []string{"run", "--schedule", every2s, "--start-deadline", "1500ms", "j", "--", "true"}
	e.mustCode(0, args...) // first tick: not due at anything known, records the next elapse
	due := *e.state("j").NextDue
	if due.Second()%2 != 0 || !due.After(time.Now().Add(-time.Second)) {
		t.Fatalf("next_due %s", due)
	}
	// On time: started 0.2 s after it was due.
	untilPast(due, 200*time.Millisecond)
	e.mustCode(0, args...)
	// Late: the host was "down" past the next elapse by 3 s.
	due = *e.state("j").NextDue
	untilPast(due, 3*time.Second)
	r := e.mustCode(75, args...)
	if !strings.Contains(r.stderr, `reason="missed-deadline: due `+due.Format(time.RFC3339)+`, 3s late (start_deadline 1.5s)"`) {
		t.Fatalf("late tick:\n%s", r.stderr)
	}
	if st := e.state("j"); st.Result != state.Skipped || st.RunsTotal != 2 {
		t.Fatalf("state: %+v", st)
	}
	// A manual start between elapses is due at nothing: it runs.
	e.mustCode(0, args...)

	// A long lock wait: due on time, but the lock group is busy for 3 s.
	due = *e.state("j").NextDue
	untilPast(due, 0)
	holder, _ := e.startRun("h", "--lock", "j", "h", "--", "sleep", "3")
	defer holder.Wait()
	untilPast(due, 100*time.Millisecond)
	r = e.mustCode(75, append([]string{"run", "--lock-wait", "10s"}, args[1:]...)...)
	if !strings.Contains(r.stderr, "missed-deadline: due "+due.Format(time.RFC3339)) {
		t.Fatalf("after a long lock wait:\n%s", r.stderr)
	}

	// A schedule change forgets the old next elapse.
	untilPast(*e.state("j").NextDue, 3*time.Second)
	e.mustCode(0, "run", "--schedule", "*:*:0/3", "--start-deadline", "1500ms", "j", "--", "true")
}

// A job with --catch-up once that the gate skipped over two elapses runs
// exactly once when the gate reopens (tickgate catch-up), and not again; a
// halted job owes nothing; catch-ups of one lock group never overlap, and
// two starts are at least --spacing apart.
func TestCatchUpOnce(t *testing.T) {
	e := newEnv(t)
	ran := e.dir + "/ran"
	job := func(name, lock, sleep string) []string {
		return []string{"run", "--schedule", every2s, "--catch-up", "once", "--lock", lock, name, "--",
			"sh", "-c", `echo "$0 start $(date +%s.%N)" >>"$1"; sleep "$2"; echo "$0 end $(date +%s.%N)" >>"$1"`, name, ran, sleep}
	}
	jobs := map[string][]string{"a1": job("a1", "api", "0.4"), "a2": job("a2", "api", "0.4"), "b": job("b", "b", "0"), "h": job("h", "h", "0")}
	// The unit starter for this test: runs the job's tick as its unit would.
	starter := e.dir + "/start"
	var script strings.Builder
	script.WriteString("#!/bin/sh\ncase \"$1\" in\n")
	for name, args := range jobs {
		script.WriteString("tickgate-" + name + ".service) exec " + bin)
		for _, a := range args {
			script.WriteString(" '" + strings.ReplaceAll(a, "'", `'\''`) + "'")
		}
		script.WriteString(" ;;\n")
	}
	script.WriteString("esac\nexit 99\n")
	if err := os.WriteFile(starter, []byte(script.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	e.extraEnv = append(e.extraEnv, "TICKGATE_CATCH_UP_UNIT=", "TICKGATE_CATCH_UP_START="+starter)

	e.mustCode(0, "gate", "close", "--reason", "deploy 9")
	for range 2 { // two elapses skipped
		for name, args := range jobs {
			if r := e.mustCode(75, args...); !strings.Contains(r.stderr, "gate-closed: deploy 9") {
				t.Fatalf("%s: %s", name, r.stderr)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st := e.state("a1"); st.CatchUp == nil || !strings.HasPrefix(st.CatchUp.Reason, "gate-closed") {
		t.Fatalf("no catch-up owed: %+v", st)
	}
	e.mustCode(0, "halt", "h", "--reason", "broken")
	if r := e.mustCode(0, "gate", "open"); !strings.Contains(r.stdout, "catch-up: 4 job(s) owe a run: run `tickgate catch-up`") {
		t.Fatalf("gate open:\n%s", r.stdout)
	}
	start := time.Now()
	r := e.mustCode(0, "catch-up", "--spacing", "300ms")
	if !strings.Contains(r.stdout, "catch-up: job h not started: halted: operator: broken") {
		t.Fatalf("catch-up:\n%s", r.stdout)
	}
	data, _ := os.ReadFile(ran)
	var starts []float64
	runs := map[string]int{}
	open := map[string]float64{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(l)
		ts := mustFloat(t, f[2])
		switch f[1] {
		case "start":
			runs[f[0]]++
			starts = append(starts, ts)
			if f[0] == "a2" && open["a1"] != 0 || f[0] == "a1" && open["a2"] != 0 {
				t.Fatalf("two catch-ups of lock group api overlap:\n%s", data)
			}
			open[f[0]] = ts
		case "end":
			open[f[0]] = 0
		}
	}
	if runs["a1"] != 1 || runs["a2"] != 1 || runs["b"] != 1 || runs["h"] != 0 {
		t.Fatalf("runs %v, want a1, a2, b once and h never\n%s", runs, data)
	}
	for i := 1; i < len(starts); i++ {
		if gap := starts[i] - starts[i-1]; gap < 0.25 {
			t.Fatalf("two starts %.3fs apart (spacing 300ms)\n%s", gap, data)
		}
	}
	t.Logf("catch-up of 3 jobs took %s", time.Since(start).Round(time.Millisecond))
	for _, j := range []string{"a1", "a2", "b"} {
		if st := e.state(j); st.CatchUp != nil || st.Result != state.Success {
			t.Fatalf("%s after its catch-up: %+v", j, st)
		}
	}
	if st := e.state("h"); st.CatchUp == nil {
		t.Fatal("the halted job's owed run vanished without running")
	}
	if r := e.mustCode(0, "catch-up"); strings.Contains(r.stdout, "catch-up: started") {
		t.Fatalf("a second catch-up ran something:\n%s", r.stdout)
	}
	// A skip by its done/halted marker ends what a job owes.
	e.mustCode(75, jobs["h"]...)
	if st := e.state("h"); st.CatchUp != nil {
		t.Fatalf("halted job still owes a catch-up: %+v", st.CatchUp)
	}
}

// A catch-up later than --start-deadline after the run it makes good is
// skipped as missed. (The schedule's next elapse is far away, so the tick
// after the reopen is the catch-up, not a timer tick.)
func TestCatchUpPastDeadline(t *testing.T) {
	e := newEnv(t)
	args := []string{"run", "--schedule", "2099-01-01 UTC", "--catch-up", "once", "--start-deadline", "1s", "j", "--", "true"}
	e.mustCode(0, "gate", "close", "--reason", "long deploy")
	e.mustCode(75, args...)
	slot := e.state("j").CatchUp.Slot
	e.extraEnv = append(e.extraEnv, "TICKGATE_CATCH_UP_UNIT=")
	e.mustCode(0, "gate", "open")
	untilPast(slot, 1500*time.Millisecond)
	r := e.mustCode(75, args...)
	if !strings.Contains(r.stderr, "missed-deadline: due "+slot.Format(time.RFC3339)) {
		t.Fatalf("%s", r.stderr)
	}
	if st := e.state("j"); st.CatchUp != nil {
		t.Fatal("a catch-up past its deadline is still owed (it can only get later)")
	}
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return f
}
