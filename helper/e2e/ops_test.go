package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tickgate/tickgate/helper/gate"
)

// Concurrent pause/close/rollout from many separate processes lose nothing.
func TestGateParallelWriterProcessesLoseNothing(t *testing.T) {
	e := newEnv(t)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan string, n+2)
	start := func(args ...string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := e.run(args...); r.code != 0 {
				errs <- fmt.Sprintf("%v: %d %s", args, r.code, r.stderr)
			}
		}()
	}
	for i := 0; i < n; i++ {
		start("gate", "pause", "--reason", "r", fmt.Sprintf("job%02d", i))
	}
	start("gate", "close", "--reason", "deploy", "--token", "t1")
	start("gate", "rollout", "--at", "+1h", "--reason", "rel")
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Error(s)
	}
	g, _, err := gate.Load(e.gate)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Paused) != n || !g.Closed || g.Token != "t1" || g.RolloutAt == nil {
		t.Fatalf("lost writes: %d paused, closed=%v token=%q rollout=%v", len(g.Paused), g.Closed, g.Token, g.RolloutAt)
	}
	if fi, _ := os.Stat(e.gate); fi.Mode().Perm() != 0o644 {
		t.Fatalf("gate mode %v", fi.Mode().Perm())
	}
}

func TestDrainNothingRunning(t *testing.T) {
	e := newEnv(t)
	r := e.mustCode(0, "drain", "--timeout", "5s")
	if !strings.HasPrefix(r.stdout, "drained: no job running") {
		t.Fatalf("stdout %q", r.stdout)
	}
}

// Drain waits for a running job and returns once it has ended.
func TestDrainWaitsForRunningJob(t *testing.T) {
	e := newEnv(t)
	job, _ := e.startRun("publisher", "publisher", "--", "sleep", "0.7")
	d := e.cmd("drain", "--timeout", "30s")
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	drainDone := make(chan error, 1)
	go func() { drainDone <- d.Wait() }()
	jobErr := job.Wait()
	jobEnded := time.Now()
	err := <-drainDone
	if exitCode(err) != 0 || exitCode(jobErr) != 0 {
		t.Fatalf("drain exit %d, job exit %d", exitCode(err), exitCode(jobErr))
	}
	if d.ProcessState == nil || time.Since(jobEnded) > 10*time.Second {
		t.Fatal("drain did not return after the job ended")
	}
	// And it had really waited: the job had ended when drain returned.
	if st := e.state("publisher"); st.Result != "success" {
		t.Fatalf("drain returned before the job finished: %s", st.Result)
	}
}

// At the timeout drain exits 1 and names what still runs, with pid and age.
func TestDrainTimeoutListsRunningJobs(t *testing.T) {
	e := newEnv(t)
	job, pid := e.startRun("publisher", "--lock", "api", "publisher", "--", "sleep", "30")
	defer func() { _ = job.Process.Signal(syscall.SIGTERM); _ = job.Wait() }()
	r := e.mustCode(1, "drain", "--timeout", "300ms")
	want := fmt.Sprintf("publisher (pid %d, running ", pid)
	if !strings.Contains(r.stdout, want) || !strings.Contains(r.stderr, "drain timed out after 300ms; still running: "+want) {
		t.Fatalf("stdout %q stderr %q, want %q", r.stdout, r.stderr, want)
	}
	r = e.mustCode(1, "drain", "--timeout", "100ms", "--json")
	var out struct {
		Drained bool
		Running []struct {
			Job, Lock      string
			PID            int
			RunningSeconds float64 `json:"running_seconds"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("drain --json: %v\n%s", err, r.stdout)
	}
	if out.Drained || len(out.Running) != 1 || out.Running[0].Job != "publisher" || out.Running[0].PID != pid || out.Running[0].Lock != "api" || out.Running[0].RunningSeconds <= 0 {
		t.Fatalf("drain --json = %+v", out)
	}
}

// A job whose helper was SIGKILLed still holds its lock group through its
// child (the holder record in the lock file names its process group):
// drain waits for it.
func TestDrainSeesOrphanedChild(t *testing.T) {
	e := newEnv(t)
	w, child := e.startRun("long", "long", "--", "sleep", "30")
	_ = w.Process.Kill()
	_ = w.Wait()
	defer syscall.Kill(-child, syscall.SIGKILL)
	r := e.mustCode(1, "drain", "--timeout", "200ms")
	if !strings.Contains(r.stdout, fmt.Sprintf("long (pid %d", child)) {
		t.Fatalf("drain did not list the orphaned child: %s", r.stdout)
	}
	// Remove the state record: the holder record alone still keeps drain
	// waiting, naming the job and the process group.
	os.Remove(e.stateDir + "/long/state.json")
	r = e.mustCode(1, "drain", "--timeout", "200ms")
	if !strings.Contains(r.stdout, fmt.Sprintf("lock group long: processes of job long's run (helper pid %d) still run (process group %d)", w.Process.Pid, child)) {
		t.Fatalf("drain ignored the run's leftovers: %s", r.stdout)
	}
	_ = syscall.Kill(-child, syscall.SIGKILL)
	waitFor(t, "child to exit", func() bool { return !alive(child) })
	e.mustCode(0, "drain", "--timeout", "5s")
}

// Drain and status never make a starting job skip: they take no locks.
func TestDrainAndStatusNeverMakeJobsSkip(t *testing.T) {
	e := newEnv(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, args := range [][]string{{"drain", "--timeout", "20ms"}, {"status", "--json", "--no-systemd"}, {"gate", "check", "j"}} {
		wg.Add(1)
		go func(args []string) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					_ = e.cmd(args...).Run()
				}
			}
		}(args)
	}
	defer func() { close(stop); wg.Wait() }()
	for i := 0; i < 60; i++ {
		if r := e.run("run", "j", "--", "true"); r.code != 0 {
			t.Fatalf("run %d exited %d while drain/status ran: %s", i, r.code, r.stderr)
		}
	}
}

// status --json: the documented schema, without systemd here.
func TestStatusJSON(t *testing.T) {
	e := newEnv(t)
	e.mustCode(0, "run", "ok", "--", "true")
	e.mustCode(4, "run", "--halt-codes", "4", "broken", "--", "sh", "-c", "exit 4")
	e.mustCode(0, "run", "--done-codes", "0", "--ok-codes", "3", "drained", "--", "true")
	e.mustCode(0, "run", "--lock", "api", "paused", "--", "true")
	e.mustCode(0, "gate", "pause", "--reason", "quota", "paused")
	long, pid := e.startRun("busy", "--lock", "api2", "busy", "--", "sleep", "30")
	defer func() { _ = long.Process.Signal(syscall.SIGTERM); _ = long.Wait() }()
	e.mustCode(0, "gate", "close", "--reason", "deploy", "--token", "t")

	// Without --no-systemd: no system bus here, status still works.
	r := e.mustCode(0, "status", "--json")
	var rep map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema", "host", "generated_at", "gate", "systemd", "jobs"} {
		if _, ok := rep[k]; !ok {
			t.Fatalf("status --json lacks %q", k)
		}
	}
	if rep["schema"] != float64(1) || rep["gate"].(map[string]any)["state"] != "closed" {
		t.Fatalf("schema/gate: %v %v", rep["schema"], rep["gate"])
	}
	jobs := map[string]map[string]any{}
	for _, j := range rep["jobs"].([]any) {
		m := j.(map[string]any)
		jobs[m["job"].(string)] = m
		for _, k := range []string{"job", "lock", "timer", "result", "reason", "exit_code", "started_at", "finished_at", "last_run",
			"last_success_at", "consecutive_failures", "running", "pid", "done", "halted", "paused"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("job %v lacks %q", m["job"], k)
			}
		}
	}
	check := func(job, what string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("%s: %s wrong: %v", job, what, jobs[job])
		}
	}
	check("ok", "result", jobs["ok"]["result"] == "success" && jobs["ok"]["halted"] == nil)
	check("broken", "halted", jobs["broken"]["halted"] != nil && jobs["broken"]["result"] == "halted" && jobs["broken"]["consecutive_failures"] == float64(1))
	check("drained", "done", jobs["drained"]["done"] != nil)
	check("paused", "paused", jobs["paused"]["paused"] != nil && jobs["paused"]["lock"] == "api")
	check("busy", "running", jobs["busy"]["running"] == true && jobs["busy"]["pid"] == float64(pid))
	if len(jobs) != 5 {
		t.Fatalf("want 5 jobs, got %d", len(jobs))
	}

	// The human view, and a job filter.
	r = e.mustCode(0, "status", "--no-systemd")
	for _, want := range []string{"gate: closed: deploy", "JOB", "broken", "halted: halt-code 4", "paused: quota", fmt.Sprint(pid)} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	r = e.mustCode(0, "status", "--json", "--no-systemd", "ok")
	if strings.Count(r.stdout, `"job":`) != 1 {
		t.Fatalf("filter: %s", r.stdout)
	}
}

// A status view for a state dir that does not exist yet is empty, not an error.
func TestStatusEmpty(t *testing.T) {
	e := newEnv(t)
	r := e.mustCode(0, "status", "--no-systemd")
	if !strings.Contains(r.stdout, "no jobs known") {
		t.Fatalf("stdout %q", r.stdout)
	}
}

// A long job calling `tickgate gate check` between batches sees an
// operator's halt (and the gate) with nothing but the environment tickgate
// run gave it, and stops at its checkpoint.
func TestGateCheckInsideJobSeesOperatorHalt(t *testing.T) {
	e := newEnv(t)
	e.extraEnv = []string{"PATH=" + filepath.Dir(bin) + ":" + os.Getenv("PATH")}
	script := `tickgate gate check || exit 9
tickgate halt --reason "stop at next checkpoint" "$TICKGATE_JOB" >/dev/null || exit 8
tickgate gate check 2>"$TICKGATE_STATE_DIR/why" && exit 7
exit 3`
	e.mustCode(0, "run", "--ok-codes", "3", "--done-codes", "0", "loop", "--", "sh", "-c", script)
	why, _ := os.ReadFile(filepath.Join(e.dir, "data", "loop", "why"))
	if !strings.Contains(string(why), "job loop: halted: operator: stop at next checkpoint") {
		t.Fatalf("gate check inside the job said %q", why)
	}
	e.mustCode(75, "run", "--ok-codes", "3", "loop", "--", "true")
}
