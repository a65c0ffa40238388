package e2e

import (
	"bytes"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tickgate/tickgate/helper/state"
)

// 1. Many simultaneous runs of one lock group: exactly one child runs.
func TestLockGroupManySimultaneousRunsExactlyOneRuns(t *testing.T) {
	e := newEnv(t)
	count := filepath.Join(e.dir, "count")
	const n = 16
	cmds := make([]*exec.Cmd, n)
	errs := make([]bytes.Buffer, n)
	for i := range cmds {
		job := "same"
		if i%2 == 1 {
			job = fmt.Sprintf("other%d", i) // different jobs, same lock group
		}
		cmds[i] = e.cmd("run", "--lock", "g", job, "--", "sh", "-c", `echo x >> "$0"; sleep 1`, count)
		cmds[i].Stderr = &errs[i]
	}
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	ran, skipped := 0, 0
	for i, c := range cmds {
		switch code := exitCode(c.Wait()); code {
		case 0:
			ran++
		case 75:
			skipped++
			if !strings.Contains(errs[i].String(), "lock-busy") {
				t.Errorf("skip without lock-busy reason: %s", errs[i].String())
			}
		default:
			t.Errorf("run %d exited %d: %s", i, code, errs[i].String())
		}
	}
	data, _ := os.ReadFile(count)
	if ran != 1 || skipped != n-1 || strings.Count(string(data), "x") != 1 {
		t.Fatalf("ran=%d skipped=%d children=%d, want 1/%d/1", ran, skipped, strings.Count(string(data), "x"), n-1)
	}
}

// 1b. Two jobs with different names but one lock never overlap, even when
// they wait for each other.
func TestDifferentJobsOneLockNeverOverlap(t *testing.T) {
	e := newEnv(t)
	inside := filepath.Join(e.dir, "inside")
	overlap := filepath.Join(e.dir, "overlap")
	script := `for i in 1 2 3; do if mkdir "$0" 2>/dev/null; then sleep 0.03; rmdir "$0"; else echo overlap >> "$1"; fi; done`
	var wg sync.WaitGroup
	codes := make(chan int, 6)
	for i := 0; i < 6; i++ {
		job := []string{"harvest", "backfill"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.cmd("run", "--lock", "api", "--lock-wait", "20s", job, "--", "sh", "-c", script, inside, overlap)
			codes <- exitCode(c.Run())
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 0 {
			t.Fatalf("a waiting run exited %d, want 0 (it should have waited for the lock)", c)
		}
	}
	if data, err := os.ReadFile(overlap); err == nil {
		t.Fatalf("jobs sharing a lock overlapped: %s", data)
	}
	if e.state("harvest").RunsTotal != 3 || e.state("backfill").RunsTotal != 3 {
		t.Fatal("not every run ran")
	}
}

// 2. SIGKILL of the wrapper: its child keeps the lock group busy (the
// holder record names its process group); no overlap ever.
func TestSIGKILLWrapperChildKeepsLock(t *testing.T) {
	e := newEnv(t)
	w, child := e.startRun("long", "--lock", "g", "long", "--", "sleep", "30")
	if err := w.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = w.Wait()
	if !alive(child) {
		t.Fatal("child died with the wrapper; test premise broken")
	}
	defer syscall.Kill(-child, syscall.SIGKILL)

	r := e.mustCode(75, "run", "--lock", "g", "other", "--", "true")
	if !strings.Contains(r.stderr, "lock-busy") {
		t.Fatalf("want lock-busy, got %s", r.stderr)
	}
	e.mustCode(75, "run", "--lock", "g", "long", "--", "true")
	// The skip of the same job kept the running record (drain relies on it).
	if st := e.state("long"); st.Result != state.Running || st.PID != child || !st.IsRunning() {
		t.Fatalf("running record clobbered by a skip: %+v", st)
	}

	if err := syscall.Kill(-child, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "orphaned child to exit", func() bool { return !alive(child) })
	e.mustCode(0, "run", "--lock", "g", "other", "--", "true")
	if st := e.state("long"); st.IsRunning() {
		t.Fatal("stale running record still counts as running after its processes died")
	}
}

// 3. SIGTERM/SIGINT to the wrapper are forwarded to the child's group.
func TestSignalsForwardedToProcessGroup(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			e := newEnv(t)
			got := filepath.Join(e.dir, "got")
			// The grandchild (sleep) is in the same group and gets the signal too.
			w, child := e.startRun("j", "j", "--", "sh", "-c", `trap 'echo caught > "$0"; exit 0' TERM INT; sleep 30 & wait`, got)
			if err := w.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if code := exitCode(w.Wait()); code != 128+int(sig) {
				t.Fatalf("exit %d, want %d", code, 128+int(sig))
			}
			if data, _ := os.ReadFile(got); strings.TrimSpace(string(data)) != "caught" {
				t.Fatal("child did not receive the forwarded signal")
			}
			waitFor(t, "process group to be gone", func() bool { return groupGone(child) })
			st := e.state("j")
			if st.Result != state.Interrupted || *st.ExitCode != 0 {
				t.Fatalf("state = %s exit %v, want interrupted with the child's exit 0 recorded", st.Result, *st.ExitCode)
			}
			if st.ConsecutiveFailures != 0 {
				t.Fatal("an operator's stop counted as a failure")
			}
		})
	}
}

// 3b. A group that ignores SIGTERM is SIGKILLed after --kill-after.
func TestKillAfterEscalatesToSIGKILL(t *testing.T) {
	e := newEnv(t)
	w, child := e.startRun("stubborn", "--kill-after", "300ms", "stubborn", "--", "sh", "-c", `trap '' TERM; sleep 30 & wait`)
	start := time.Now()
	_ = w.Process.Signal(syscall.SIGTERM)
	code := exitCode(w.Wait())
	took := time.Since(start)
	if code != 143 {
		t.Fatalf("exit %d, want 143", code)
	}
	if took < 300*time.Millisecond {
		t.Fatalf("killed after %v, before --kill-after", took)
	}
	// The SIGKILLed grandchild is reparented; give init a moment to reap it.
	waitFor(t, "process group to be gone after SIGKILL", func() bool { return groupGone(child) })
	if st := e.state("stubborn"); st.Result != state.Interrupted || *st.ExitCode != 137 {
		t.Fatalf("state %s exit %d, want interrupted, child exit 137", st.Result, *st.ExitCode)
	}
}

// --timeout stops the command: a failure with reason timeout.
func TestTimeout(t *testing.T) {
	e := newEnv(t)
	r := e.mustCode(143, "run", "--timeout", "200ms", "slow", "--", "sleep", "30")
	if !strings.Contains(r.stderr, "timeout") {
		t.Fatalf("no timeout reason: %s", r.stderr)
	}
	st := e.state("slow")
	if st.Result != state.Failed || st.ConsecutiveFailures != 1 || !strings.HasPrefix(st.Reason, "timeout") {
		t.Fatalf("state %+v", st.Run)
	}
}

// 4. The exit-code contract and markers across runs.
func TestExitCodeContractAndMarkers(t *testing.T) {
	drain := []string{"--ok-codes", "3", "--done-codes", "0", "--halt-codes", "4", "--halt-after", "1"}
	type step struct {
		childExit int // -1: the child must not run
		wantExit  int
		result    string
	}
	tests := []struct {
		name   string
		flags  []string
		steps  []step
		marker string
	}{
		{"default ok", nil, []step{{0, 0, state.Success}, {2, 2, state.Failed}, {0, 0, state.Success}}, ""},
		{"drain: checkpoints then done", drain, []step{{3, 0, state.Success}, {3, 0, state.Success}, {0, 0, state.Done}, {-1, 75, state.Skipped}, {-1, 75, state.Skipped}}, state.MarkerDone},
		{"drain: halt code", drain, []step{{3, 0, state.Success}, {4, 4, state.Halted}, {-1, 75, state.Skipped}}, state.MarkerHalted},
		{"drain: any failure halts after 1", drain, []step{{1, 1, state.Halted}, {-1, 75, state.Skipped}}, state.MarkerHalted},
		// A failure never looks like success to systemd (OnFailure= must fire):
		// exit 0 that is not an ok code, and the skip code 75, exit 1.
		{"exit 0 not an ok code", []string{"--ok-codes", "3"}, []step{{0, 1, state.Failed}, {3, 0, state.Success}}, ""},
		{"exit 75 is a failure, not a skip", nil, []step{{75, 1, state.Failed}}, ""},
		{"halt code 0", []string{"--ok-codes", "3", "--halt-codes", "0"}, []step{{0, 1, state.Halted}, {-1, 75, state.Skipped}}, state.MarkerHalted},
		{"halt-after 3", []string{"--halt-after", "3"}, []step{{1, 1, state.Failed}, {0, 0, state.Success}, {1, 1, state.Failed}, {1, 1, state.Failed}, {2, 2, state.Halted}, {-1, 75, state.Skipped}}, state.MarkerHalted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ran := filepath.Join(e.dir, "ran")
			for i, s := range tt.steps {
				os.Remove(ran)
				code := s.childExit
				if code < 0 {
					code = 0
				}
				args := append(append([]string{"run"}, tt.flags...), "job", "--", "sh", "-c", fmt.Sprintf(`touch "$0"; exit %d`, code), ran)
				e.mustCode(s.wantExit, args...)
				_, err := os.Stat(ran)
				if (err == nil) != (s.childExit >= 0) {
					t.Fatalf("step %d: child ran=%v, want %v", i, err == nil, s.childExit >= 0)
				}
				if st := e.state("job"); st.Result != s.result {
					t.Fatalf("step %d: result %s, want %s (%s)", i, st.Result, s.result, st.Reason)
				}
			}
			for _, m := range []string{state.MarkerDone, state.MarkerHalted} {
				var mk state.Marker
				_, err := os.Stat(filepath.Join(e.stateDir, "job", m))
				if (err == nil) != (m == tt.marker) {
					t.Fatalf("marker %s present=%v, want %v", m, err == nil, m == tt.marker)
				}
				if err == nil {
					readJSON(t, filepath.Join(e.stateDir, "job", m), &mk)
					if mk.RunID == "" || mk.ExitCode == nil || mk.Reason == "" || mk.At.IsZero() {
						t.Fatalf("marker %s incomplete: %+v", m, mk)
					}
				}
			}
		})
	}
}

// 4b. state.json and markers always parse, even after SIGKILL at any point.
func TestFilesParseAfterSIGKILLAtAnyPoint(t *testing.T) {
	e := newEnv(t)
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 60; i++ {
		c := e.cmd("run", "--done-codes", "0", "--ok-codes", "3", "j", "--", "true")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Intn(12000)) * time.Microsecond)
		_ = c.Process.Kill()
		_ = c.Wait()
		for _, f := range []string{"state.json", "done"} {
			p := filepath.Join(e.stateDir, "j", f)
			if _, err := os.Stat(p); err == nil {
				var v map[string]any
				readJSON(t, p, &v)
			}
		}
		os.Remove(filepath.Join(e.stateDir, "j", "done"))
		if p := filepath.Join(e.metricDir, "tickgate_j.prom"); fileExists(p) {
			parseMetrics(t, p)
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// 5. The gate, through the binary.
func TestGate(t *testing.T) {
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	soon := time.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339)
	tests := []struct {
		name     string
		gate     string // "" = missing; "!mode" suffix handled below
		mode     os.FileMode
		flags    []string
		wantExit int
		ran      bool
		reason   string
	}{
		{"missing", "", 0, nil, 0, true, "result=success"},
		{"open", `{"closed": false}`, 0o644, nil, 0, true, "result=success"},
		{"closed", `{"closed": true, "reason": "deploy 9"}`, 0o644, nil, 75, false, "gate-closed: deploy 9"},
		{"closed until future", `{"closed": true, "until": "` + future + `"}`, 0o644, nil, 75, false, "gate-closed"},
		{"closure expired", `{"closed": true, "until": "` + past + `"}`, 0o644, nil, 0, true, "result=success"},
		{"paused", `{"paused": {"j": {"reason": "db", "since": "` + past + `"}}}`, 0o644, nil, 75, false, "job-paused: db"},
		{"other paused", `{"paused": {"k": {"reason": "db", "since": "` + past + `"}}}`, 0o644, nil, 0, true, "result=success"},
		{"rollout overlaps", `{"rollout_at": "` + soon + `"}`, 0o644, []string{"--expected-runtime", "30m"}, 75, false, "rollout-window"},
		{"rollout clear of runtime", `{"rollout_at": "` + soon + `"}`, 0o644, []string{"--expected-runtime", "5m"}, 0, true, "result=success"},
		{"malformed, fail closed", `{"closed": `, 0o644, nil, 78, false, "malformed"},
		{"malformed, fail open", `{"closed": `, 0o644, []string{"--gate-fail", "open"}, 0, true, "warning"},
		{"insecure, fail closed", `{}`, 0o666, nil, 78, false, "insecure"},
		{"insecure, fail open", `{}`, 0o666, []string{"--gate-fail", "open"}, 0, true, "warning"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.gate != "" {
				e.writeGate(tt.gate)
				os.Chmod(e.gate, tt.mode)
			}
			ran := filepath.Join(e.dir, "ran")
			args := append(append([]string{"run"}, tt.flags...), "j", "--", "touch", ran)
			r := e.mustCode(tt.wantExit, args...)
			if fileExists(ran) != tt.ran {
				t.Fatalf("child ran=%v, want %v", fileExists(ran), tt.ran)
			}
			if tt.reason == "" || !strings.Contains(r.stderr, tt.reason) {
				t.Fatalf("stderr %q lacks %q", r.stderr, tt.reason)
			}
			if tt.reason == "result=success" && strings.Contains(r.stderr, "reason=") {
				t.Fatalf("an allowed run gave a reason: %q", r.stderr)
			}
			if !tt.ran && fileExists(filepath.Join(e.lockDir, "j.lock")) {
				t.Fatal("a skip took the lock (lock file created)")
			}
		})
	}
}

// 7. Bad input: 64, one line naming what is wrong, nothing written.
func TestBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--nope", "j", "--", "true"}, "nope"},
		{[]string{"run", "j", "true"}, "missing --"},
		{[]string{"run", "j", "--"}, "empty command"},
		{[]string{"run", "j", "--", ""}, "empty command"},
		{[]string{"run"}, "missing JOB"},
		{[]string{"run", "-bad", "--", "true"}, "bad"},
		{[]string{"run", "bad/name", "--", "true"}, `invalid job name "bad/name"`},
		{[]string{"run", ".hidden", "--", "true"}, "invalid job name"},
		{[]string{"run", "--lock", "a b", "j", "--", "true"}, "--lock"},
		{[]string{"run", "--timeout", "soon", "j", "--", "true"}, "--timeout"},
		{[]string{"run", "--lock-wait", "-1s", "j", "--", "true"}, "--lock-wait"},
		{[]string{"run", "--ok-codes", "0,x", "j", "--", "true"}, "--ok-codes"},
		{[]string{"run", "--halt-codes", "256", "j", "--", "true"}, "--halt-codes"},
		{[]string{"run", "--ok-codes", "0", "--done-codes", "0", "j", "--", "true"}, "more than one"},
		{[]string{"run", "--halt-after", "-2", "j", "--", "true"}, "--halt-after"},
		{[]string{"run", "--gate-fail", "maybe", "j", "--", "true"}, "--gate-fail"},
		{[]string{"run", "j", "extra", "--", "true"}, `job j: unexpected argument "extra" before --`},
		{[]string{"run", "j", "--lock", "a b", "--", "true"}, "--lock"}, // flags after JOB are flags
		{[]string{"frobnicate"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e := newEnv(t)
			r := e.mustCode(64, tt.args...)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != 1 || !strings.Contains(r.stderr, tt.want) || !strings.HasPrefix(r.stderr, "tickgate: ") {
				t.Fatalf("stderr = %q, want one 'tickgate: ' line containing %q", r.stderr, tt.want)
			}
			for _, p := range []string{e.stateDir, e.lockDir, e.metricDir} {
				if fileExists(p) {
					t.Fatalf("%s was created by a rejected command", p)
				}
			}
		})
	}
}

// The child gets exactly its argv and its environment; fd 3 is closed (the
// lock group's lock stays with the helper) and fd 4 is its control socket.
func TestChildArgvEnvAndLockFD(t *testing.T) {
	e := newEnv(t)
	out := filepath.Join(e.dir, "argv")
	want := []string{"it's", "100%", "$HOME", "a b", `"q"`, `back\slash`, ";", "", "*", "\ttab"}
	args := append([]string{"run", "--lock", "grp", "argv", "--", "sh", "-c",
		`printf '%s\0' "$@" > "$OUT"; env | grep '^TICKGATE_' | sort > "$OUT.env"; readlink /proc/self/fd/4 > "$OUT.ctl"`, "sh"}, want...)
	e.extraEnv = []string{"OUT=" + out, "TICKGATE_RUN_ID=stale"}
	e.mustCode(0, args...)
	data, _ := os.ReadFile(out)
	got := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("argv = %q, want %q", got, want)
	}
	envData, _ := os.ReadFile(out + ".env")
	st := e.state("argv")
	for _, kv := range []string{"TICKGATE_JOB=argv", "TICKGATE_LOCK=grp", "TICKGATE_RUN_ID=" + st.RunID,
		"TICKGATE_STATE_DIR=" + filepath.Join(e.dir, "data", "argv"), "TICKGATE_DATA_DIR=" + filepath.Join(e.dir, "data", "argv"), "TICKGATE_GATE=" + e.gate} {
		if !strings.Contains(string(envData), kv+"\n") {
			t.Errorf("child env lacks %s:\n%s", kv, envData)
		}
	}
	if strings.Contains(string(envData), "TICKGATE_LOCK_FD") {
		t.Fatalf("child env still names a lock descriptor:\n%s", envData)
	}
	// ls (no shell in between) opens one descriptor for the directory it
	// lists: 3, free since the helper gave none there.
	r := e.mustCode(0, "run", "--lock", "grp", "argv", "--", "ls", "/proc/self/fd")
	if fds := strings.Join(strings.Fields(r.stdout), " "); fds != "0 1 2 3 4" {
		t.Fatalf("the child's descriptors (as ls, which holds 3, saw them): %q, want 0 1 2 and the control socket 4", fds)
	}
	if ctl, _ := os.ReadFile(out + ".ctl"); !strings.HasPrefix(string(ctl), "socket:") {
		t.Fatalf("fd 4 = %q, want the control socket", ctl)
	}
}

func TestCommandNotFound(t *testing.T) {
	e := newEnv(t)
	r := e.mustCode(127, "run", "j", "--", "/nonexistent/cmd")
	if !strings.Contains(r.stderr, "cannot start") {
		t.Fatalf("stderr %q", r.stderr)
	}
	if st := e.state("j"); st.Result != state.Failed || st.ConsecutiveFailures != 1 {
		t.Fatalf("state %+v", st.Run)
	}
}

// 6. Plain log line when stderr is not the journal (JOURNAL_STREAM names
// another file), and sd_notify STATUS= updates when NOTIFY_SOCKET is set.
func TestLoggingAndNotify(t *testing.T) {
	e := newEnv(t)
	sock := filepath.Join(e.dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	e.extraEnv = []string{"NOTIFY_SOCKET=" + sock, "JOURNAL_STREAM=1:1"}

	holder, _ := e.startRun("holder", "--lock", "g", "holder", "--", "sleep", "0.4")
	r := e.mustCode(0, "run", "--lock", "g", "--lock-wait", "10s", "waiter", "--", "true")
	_ = holder.Wait()
	if !strings.HasPrefix(r.stderr, "tickgate: job=waiter result=success exit=0 ") || !strings.Contains(r.stderr, "lock=g") {
		t.Fatalf("plain line = %q", r.stderr)
	}
	var msgs []string
	buf := make([]byte, 4096)
	for {
		conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		msgs = append(msgs, string(buf[:n]))
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"STATUS=waiting for lock g", "STATUS=running waiter pid "} {
		if !strings.Contains(all, want) {
			t.Errorf("notify messages lack %q:\n%s", want, all)
		}
	}
}

func parseMetrics(t *testing.T, path string) map[string]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("%s is not valid Prometheus text: %v", path, err)
	}
	out := map[string]float64{}
	for name, fam := range fams {
		for _, m := range fam.Metric {
			switch {
			case m.Gauge != nil:
				out[name] = m.Gauge.GetValue()
			case m.Counter != nil:
				out[name] = m.Counter.GetValue()
			}
		}
	}
	return out
}

// Metrics: valid text format, heartbeat moves on skips, markers as 0/1.
func TestMetrics(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(e.metricDir, "tickgate_m.prom")
	e.mustCode(0, "run", "--ok-codes", "3", "--done-codes", "0", "m", "--", "sh", "-c", "exit 3")
	m1 := parseMetrics(t, path)
	if m1["tickgate_runs_total"] != 1 || m1["tickgate_last_exit_code"] != 3 || m1["tickgate_done"] != 0 || m1["tickgate_last_success_timestamp_seconds"] == 0 {
		t.Fatalf("after a checkpoint run: %v", m1)
	}
	e.writeGate(`{"closed": true, "reason": "deploy"}`)
	time.Sleep(20 * time.Millisecond)
	e.mustCode(75, "run", "m", "--", "true")
	m2 := parseMetrics(t, path)
	if m2["tickgate_heartbeat_timestamp_seconds"] <= m1["tickgate_heartbeat_timestamp_seconds"] {
		t.Fatal("heartbeat did not move on a gated skip")
	}
	if m2["tickgate_last_run_timestamp_seconds"] != m1["tickgate_last_run_timestamp_seconds"] || m2["tickgate_last_skipped"] != 1 || m2["tickgate_skips_total"] != 1 {
		t.Fatalf("a skip changed run metrics or did not count: %v", m2)
	}
	os.Remove(e.gate)
	e.mustCode(0, "run", "--ok-codes", "3", "--done-codes", "0", "m", "--", "true")
	if m3 := parseMetrics(t, path); m3["tickgate_done"] != 1 || m3["tickgate_halted"] != 0 {
		t.Fatalf("done marker not reflected: %v", m3)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Fatalf("metrics file mode %v", fi.Mode().Perm())
	}
}
