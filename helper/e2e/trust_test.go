package e2e

// The trust boundary, round 2 (docs/security.md): the supervisor
// runs nothing, holds nothing and prints nothing that a job controls. Each
// attack is made the way a job's user would make it, with real processes of
// other uids and the helper run as systemd runs it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tickgate/tickgate/helper/notify"
	"github.com/tickgate/tickgate/helper/textsafe"
)

// hostileEnv is what a job's environment may hold that a loader, libc, Go or
// an HTTP client would act on, besides its own PATH first: each planted
// where the job's user can write (dir).
func hostileEnv(dir, preload string) map[string]string {
	return map[string]string{
		"PATH":            dir + "/bin:/usr/bin:/bin",
		"LD_PRELOAD":      preload,
		"LD_LIBRARY_PATH": dir + "/lib",
		"LD_AUDIT":        preload,
		"PYTHONPATH":      dir + "/py",
		"PYTHONSTARTUP":   dir + "/py/start.py",
		"GCONV_PATH":      dir + "/gconv",
		"LOCPATH":         dir + "/locale",
		"LC_ALL":          "xx_XX.UTF-8",
		"TZ":              "Etc/GMT-14",
		"TZDIR":           dir + "/zoneinfo",
		"NLSPATH":         dir + "/nls/%N",
		"HOSTALIASES":     dir + "/hosts",
		"RES_OPTIONS":     "debug",
		"GODEBUG":         "inittrace=1",
		"GOCOVERDIR":      dir + "/cover",
		"HTTPS_PROXY":     "http://127.0.0.1:9",
		"HTTP_PROXY":      "http://127.0.0.1:9",
		"SYSTEMD_PAGER":   dir + "/bin/pager",
		"MY_VAR":          "it's 100% $HOME \"quoted\" back\\slash",
	}
}

// plant makes, in dir (the job's), programs named as every program a tick
// runs or could look up, and a preload library: each appends a line naming
// itself and its uid to proof when it runs.
func plant(t *testing.T, dir, proof string, uid int) (preload string) {
	t.Helper()
	must(t, os.MkdirAll(dir+"/bin", 0o755))
	for _, name := range []string{"systemd-analyze", "journalctl", "systemctl", "tickgate", "tickgate-exec", "tickgate-tick", "sh", "true", "env", "id"} {
		script := "#!/bin/sh\necho \"planted " + name + " ran as uid $(/usr/bin/id -u)\" >> " + proof + "\nexit 0\n"
		must(t, os.WriteFile(dir+"/bin/"+name, []byte(script), 0o755))
	}
	src := dir + "/preload.c"
	must(t, os.WriteFile(src, []byte(`#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void planted(void) {
	char exe[256] = {0}, line[512];
	readlink("/proc/self/exe", exe, sizeof exe - 1);
	int n = snprintf(line, sizeof line, "preload ran as uid %d in %s\n", (int)getuid(), exe);
	int fd = open(PROOF, O_WRONLY | O_APPEND | O_CREAT, 0666);
	if (fd >= 0) { write(fd, line, n); close(fd); }
}
`), 0o644))
	preload = dir + "/preload.so"
	cc := exec.Command("gcc", "-shared", "-fPIC", "-DPROOF=\""+proof+"\"", "-o", preload, src)
	if out, err := cc.CombinedOutput(); err != nil {
		t.Fatalf("building the planted preload library (gcc is one of make test's packages): %v\n%s", err, out)
	}
	must(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	}))
	return preload
}

// writeEnvFile writes a job's environment file as the role does: the
// supervisor's, 0600, in a directory of root's.
func (s *secEnv) writeEnvFile(t *testing.T, job string, vars map[string]string) string {
	t.Helper()
	dir := filepath.Join(s.dir, "env")
	must(t, os.MkdirAll(dir, 0o755))
	data, err := json.Marshal(vars)
	must(t, err)
	p := filepath.Join(dir, job+".json")
	must(t, os.WriteFile(p, data, 0o600))
	must(t, os.Chown(p, supUID, supUID))
	return p
}

// A job whose environment puts its own writable directory first in PATH and
// sets LD_PRELOAD (and every other variable a loader, libc, Go or an HTTP
// client reads), with --start-deadline, --catch-up once and a webhook on
// every run, so that every program a tick runs is exercised: nothing planted
// runs outside the job's uid — and the job's command sees its variables
// exactly. The helper's own environment is made hostile too (a hand-written
// unit, or one a release before this one rendered): it changes nothing.
func TestAttackJobEnvironment(t *testing.T) {
	s := newSecEnv(t)
	proofDir := filepath.Join(s.dir, "proof")
	must(t, os.MkdirAll(proofDir, 0o777))
	must(t, os.Chmod(proofDir, 0o1777))
	proof := filepath.Join(proofDir, "ran")
	venv := filepath.Join(s.data, "a", "venv")
	preload := plant(t, venv, proof, uidA)
	vars := hostileEnv(venv, preload)
	envFile := s.writeEnvFile(t, "a", vars)

	h := &hits{}
	srv := h.server(t)
	ndir := filepath.Join(s.dir, "notify")
	must(t, os.MkdirAll(ndir, 0o755))
	targets, _ := json.Marshal(notify.Config{Targets: []notify.Target{{Kind: "webhook", URL: srv.URL + "/hook/a", On: "every"}}})
	must(t, os.WriteFile(filepath.Join(ndir, "a.json"), targets, 0o600))
	must(t, os.Chown(filepath.Join(ndir, "a.json"), supUID, supUID))

	helperEnv := []string{"TICKGATE_NOTIFY_DIR=" + ndir, "INVOCATION_ID=0123456789abcdef0123456789abcdef"}
	for k, v := range vars {
		helperEnv = append(helperEnv, k+"="+v)
	}
	s.extraEnv = append(s.extraEnv, helperEnv...)
	out := filepath.Join(s.data, "a", "env.out")
	tick := func(want int) result {
		t.Helper()
		r, _ := s.asUID(supUID, true, tickBin, "run", "--user", strconv.Itoa(uidA), "--env-file", envFile,
			"--schedule", "*:*:0/2", "--start-deadline", "1h", "--catch-up", "once",
			"a", "--", "/usr/bin/env", "-0")
		if r.code != want {
			t.Fatalf("tick: exit %d, want %d\nstderr: %s", r.code, want, r.stderr)
		}
		return r
	}
	// A skip (the gate closed: the skip path asks systemd-analyze for the
	// schedule), root's reopen (which starts the catch-up unit through
	// systemctl), then a run (the deadline asked before the command, the
	// webhook's journalctl after it).
	if r, _ := s.root("gate", "close", "--reason", "deploy"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	tick(75)
	if r, _ := s.root("gate", "open"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r := tick(0)
	must(t, os.WriteFile(out, []byte(r.stdout), 0o644))

	got := map[string]string{}
	for _, kv := range strings.Split(strings.TrimSuffix(r.stdout, "\x00"), "\x00") {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	for k, v := range vars {
		if got[k] != v {
			t.Errorf("the job's %s = %q, want %q exactly", k, got[k], v)
		}
	}
	h.mu.Lock()
	hooks := len(h.webhooks)
	h.mu.Unlock()
	if hooks != 1 {
		t.Errorf("webhooks: %d, want 1 (the run's)", hooks)
	}
	data, _ := os.ReadFile(proof)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	// The job's own program loads its own preload (twice: LD_PRELOAD, and
	// LD_AUDIT in a namespace of its own): proof that the planted library
	// works, and the only lines there may be.
	own := fmt.Sprintf("preload ran as uid %d in /usr/bin/env", uidA)
	if len(lines) == 0 || lines[0] != own {
		t.Fatalf("the planted preload did not run in the job's own program (the test's premise): %q", lines)
	}
	for _, l := range lines {
		if l != own {
			t.Errorf("planted code ran outside the job: %s", l)
		}
	}
}

// A job hands every descriptor it has (fd 3 once held the lock group's pin)
// over SCM_RIGHTS to a process of its uid outside the tick, which keeps
// them: once the run has ended, the sibling of its lock group runs, and
// drain returns at once.
func TestAttackLockDescriptorPassedOut(t *testing.T) {
	s := newSecEnv(t)
	sock := filepath.Join(s.data, "a", "recv.sock")
	got := sock + ".got"
	recv := exec.Command("/usr/bin/python3", "-c", `
import os, socket, sys, time
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
l.bind(sys.argv[1]); l.listen(1)
c, _ = l.accept()
msg, fds, flags, addr = socket.recv_fds(c, 1, 64)
open(sys.argv[2], "w").write(" ".join(os.readlink("/proc/self/fd/%d" % f) for f in fds))
time.sleep(120)
`, sock, got)
	recv.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uidA, Gid: uidA, Groups: []uint32{}}, Setsid: true}
	must(t, recv.Start())
	defer func() { _ = recv.Process.Kill(); _ = recv.Wait() }()
	waitFor(t, "the receiver's socket", func() bool { _, err := os.Stat(sock); return err == nil })

	// Every descriptor but the standard streams (the test's own pipes,
	// which the test would wait on; under systemd they are the journal's).
	send := `
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(sys.argv[1])
fds = []
for f in sorted(int(x) for x in os.listdir("/proc/self/fd")):
    try:
        os.fstat(f)
        if f > 2 and f != s.fileno(): fds.append(f)
    except OSError:
        pass
socket.send_fds(s, [b"x"], fds)
`
	r, _ := s.asUID(supUID, true, tickBin, "run", "--user", strconv.Itoa(uidA), "--lock", "g", "a", "--", "/usr/bin/python3", "-c", send, sock)
	if r.code != 0 {
		t.Fatalf("the passing job: exit %d: %s", r.code, r.stderr)
	}
	waitFor(t, "the receiver to hold the descriptors", func() bool { _, err := os.Stat(got); return err == nil })
	held, _ := os.ReadFile(got)
	t.Logf("held outside the run: %s", held)
	if strings.Contains(string(held), s.lockDir) {
		t.Fatalf("the job could pass a descriptor of the lock dir: %s", held)
	}
	// The sibling in the same lock group runs; drain and status see nothing.
	r, _ = s.asUID(supUID, true, tickBin, "run", "--user", strconv.Itoa(uidB), "--lock", "g", "b", "--", "true")
	if r.code != 0 {
		t.Fatalf("the sibling of the lock group after the run: exit %d: %s", r.code, r.stderr)
	}
	r, took := s.root("drain", "--timeout", "5s")
	if r.code != 0 || took > 2*time.Second {
		t.Fatalf("drain with the descriptors held outside: exit %d after %s: %s%s", r.code, took, r.stdout, r.stderr)
	}
	st, _ := s.root("status", "--no-systemd", "--json")
	if strings.Contains(st.stdout, `"running": true`) {
		t.Fatalf("status shows a run: %s", st.stdout)
	}
}

// hostileText is what a job's output, a forged state file or a careless
// operator's paste can put where a reason goes.
const hostileText = "pwned \x1b]0;owned\x07 \x1b[2J \u009b31m \u202eevil\u202c \u2066x\u2069 \x7f"

// unsafeIn names the first rune of out a terminal would obey ("" if none):
// what textsafe escapes, newlines and tabs aside (a table's own).
func unsafeIn(out string) string {
	for i, r := range out {
		if r == '\n' || r == '\t' {
			continue
		}
		if (r == utf8.RuneError && !strings.HasPrefix(out[i:], "\uFFFD")) || textsafe.Unsafe(r) {
			return fmt.Sprintf("%q at byte %d", r, i)
		}
	}
	return ""
}

// Every operator-facing printer escapes text that came from a job, a state
// file, a marker, the gate or a back-off: no raw ESC, C1 or bidi control
// reaches root's terminal, whichever command prints it.
func TestAttackEscapesNeverReachTheTerminal(t *testing.T) {
	s := newSecEnv(t)
	now := time.Now().UTC()
	// A state file and marker as a job could have forged them before the
	// boundary (or a careless operator's halt reason pasted from a job's
	// output), a gate and a back-off written with such text.
	stateDoc := map[string]any{"job": "a", "lock": "a", "result": "failed", "reason": hostileText, "run_id": "x" + hostileText,
		"started_at": now, "finished_at": now, "exit_code": 3, "consecutive_failures": 1,
		"last_run": map[string]any{"result": "failed", "reason": hostileText, "started_at": now},
		"history":  []any{map[string]any{"result": "failed", "reason": hostileText, "run_id": hostileText, "started_at": now, "exit_code": 3}}}
	data, _ := json.Marshal(stateDoc)
	must(t, os.WriteFile(s.stateDir+"/a/state.json", data, 0o644))
	if r, _ := s.root("halt", "--reason", hostileText, "a"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	for _, args := range [][]string{
		{"gate", "pause", "--reason", hostileText, "b"},
		{"gate", "rollout", "--at", "+1h", "--reason", hostileText},
		{"gate", "close", "--reason", hostileText, "--token", hostileText},
	} {
		if r, _ := s.root(args...); r.code != 0 {
			t.Fatalf("%v: %s", args, r.stderr)
		}
	}
	bo, _ := json.Marshal(map[string]any{"lock": "b", "until": now.Add(time.Hour), "reason": hostileText, "set_by": hostileText, "set_at": now})
	must(t, os.WriteFile(s.lockDir+"/b.backoff", bo, 0o644))
	must(t, os.Chown(s.lockDir+"/b.backoff", supUID, supUID))

	for _, args := range [][]string{
		{"status", "--no-systemd"},
		{"status", "--no-systemd", "--json"},
		{"status", "--no-systemd", "--json", "--printable"},
		{"status", "--no-systemd", "a"},
		{"history", "a"},
		{"history", "--json", "a"},
		{"gate", "show"},
		{"gate", "show", "--json"},
		{"gate", "check", "a"},
		{"gate", "check", "b"},
		{"catch-up", "--dry-run"},
		{"drain", "--timeout", "1s"},
		{"backoff", "--lock", "b", "--for", "2h", "--reason", "longer"},
		{"clear", "a"},
		{"gate", "open"},
	} {
		r, _ := s.root(args...)
		for _, stream := range []struct{ name, text string }{{"stdout", r.stdout}, {"stderr", r.stderr}} {
			if bad := unsafeIn(stream.text); bad != "" {
				t.Errorf("tickgate %s: %s holds %s:\n%s", strings.Join(args, " "), stream.name, bad, stream.text)
			}
		}
		if len(args) > 3 && args[3] == "--printable" {
			// Decoded, every value is printable too: what the fact gives
			// Ansible, and playbooks/status.yml prints.
			var v any
			must(t, json.Unmarshal([]byte(r.stdout), &v))
			vals, _ := json.Marshal(v)
			var all []string
			collectStrings(v, &all)
			for _, str := range all {
				if bad := unsafeIn(str); bad != "" || strings.ContainsAny(str, "\n\t") {
					t.Errorf("status --json --printable: a value holds %s: %q\n%s", bad, str, vals)
				}
			}
		}
	}
	// The same text in a tick's own report (the stderr line, as without
	// the journal), from its skip reason.
	r := s.tick(t, "b", 75)
	if bad := unsafeIn(r.stderr); bad != "" {
		t.Errorf("a tick's report holds %s: %s", bad, r.stderr)
	}
}

func collectStrings(v any, out *[]string) {
	switch x := v.(type) {
	case string:
		*out = append(*out, x)
	case []any:
		for _, e := range x {
			collectStrings(e, out)
		}
	case map[string]any:
		for _, e := range x {
			collectStrings(e, out)
		}
	}
}

// The answer a tick gets and the answer gate check gives — as an operator,
// and from inside the running job through its supervisor — come from one
// ordered list of checks (package admit): for each check that says no, all
// three say no, with the same code and reason.
func TestGateCheckAgreesWithTheTick(t *testing.T) {
	e := newEnv(t)
	e.extraEnv = append(e.extraEnv, "PATH="+filepath.Dir(bin)+":/usr/bin:/bin")
	flags := []string{"--expected-runtime", "2h"}
	e.mustCode(0, append(append([]string{"run"}, flags...), "j", "--", "true")...) // its state records its flags
	for _, c := range []struct {
		name       string
		apply      func()
		undo       func()
		code       int
		prefix     string
		gateFailOp bool
	}{
		{"halted marker", func() { e.mustCode(0, "halt", "--reason", "bad data", "j") }, func() { e.mustCode(0, "clear", "j") }, 75, "halted: operator: bad data", false},
		{"gate closed", func() { e.mustCode(0, "gate", "close", "--reason", "deploy 7") }, func() { e.mustCode(0, "gate", "open") }, 75, "gate-closed: deploy 7", false},
		{"job paused", func() { e.mustCode(0, "gate", "pause", "--reason", "quota", "j") }, func() { e.mustCode(0, "gate", "resume", "j") }, 75, "job-paused: quota", false},
		{"rollout window", func() { e.mustCode(0, "gate", "rollout", "--at", "+1h", "--reason", "4.2") }, func() { e.mustCode(0, "gate", "rollout", "--clear") }, 75, "rollout-window:", false},
		{"gate unusable", func() { e.writeGate(`{"closed": tru`) }, func() { e.writeGate(`{"closed": false}`) }, 78, "gate-unusable:", false},
		{"lock group backs off", func() { e.mustCode(0, "backoff", "--lock", "j", "--for", "1h", "--reason", "429") }, func() { e.mustCode(0, "backoff", "--clear", "--lock", "j") }, 75, "backoff: lock group j until", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.apply()
			defer c.undo()
			// The tick.
			r := e.mustCode(c.code, append(append([]string{"run"}, flags...), "j", "--", "true")...)
			if !strings.Contains(r.stderr, c.prefix) {
				t.Fatalf("tick: %s", r.stderr)
			}
			// gate check as an operator: the job's flags from its state.
			r = e.mustCode(c.code, "gate", "check", "j")
			if !strings.Contains(r.stderr, "job j: "+c.prefix) {
				t.Fatalf("gate check: %s", r.stderr)
			}
			// gate check inside the running job, the condition arriving
			// while it runs: its supervisor answers.
			c.undo()
			out := e.checkInsideJob(t, flags, c.apply)
			if !strings.Contains(out, fmt.Sprintf("code=%d", c.code)) || !strings.Contains(out, c.prefix) {
				t.Fatalf("gate check inside the job: %s", out)
			}
		})
	}
	// With nothing stopping it, all three let it go.
	e.mustCode(0, "gate", "check", "j")
	r := e.mustCode(0, "run", "j", "--", "/bin/sh", "-c", `tickgate gate check; echo "code=$?"`)
	if !strings.Contains(r.stdout, "code=0") {
		t.Fatalf("gate check inside an admitted job: %s", r.stdout)
	}
}

// checkInsideJob runs job j (with flags) until it is running, calls arrive
// (the condition arriving while the job runs), then has the job ask its
// supervisor `tickgate gate check`; it returns what the job printed, ending
// in code=N.
func (e *env) checkInsideJob(t *testing.T, flags []string, arrive func()) string {
	t.Helper()
	ready, goOn := filepath.Join(e.dir, "ready"), filepath.Join(e.dir, "go")
	os.Remove(ready)
	os.Remove(goOn)
	script := `: > "$1"; while [ ! -e "$2" ]; do sleep 0.02; done; tickgate gate check 2>&1; echo "code=$?"`
	run := e.cmd(append(append([]string{"run"}, flags...), "j", "--", "/bin/sh", "-c", script, "sh", ready, goOn)...)
	var out bytes.Buffer
	run.Stdout, run.Stderr = &out, &out
	must(t, run.Start())
	waitFor(t, "the job to run", func() bool { _, err := os.Stat(ready); return err == nil })
	arrive()
	must(t, os.WriteFile(goOn, nil, 0o644))
	_ = run.Wait()
	return out.String()
}

// A healthchecks check hears a run's start before its end: the start ping
// is sent (bounded) before any end ping, even when it is slow to answer.
func TestStartPingBeforeEndPing(t *testing.T) {
	e := newEnv(t)
	e.extraEnv = append(e.extraEnv, "TICKGATE_NOTIFY_DIR="+e.dir+"/notify")
	var mu sync.Mutex
	var events []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		events = append(events, "got "+r.URL.Path)
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/start") {
			time.Sleep(400 * time.Millisecond) // a slow start ping
			mu.Lock()
			events = append(events, "answered "+r.URL.Path)
			mu.Unlock()
		}
	}))
	defer srv.Close()
	e.writeTargets(t, "j", 0o600, notify.Target{Kind: "healthchecks", URL: srv.URL + "/ping/u", On: "every"})
	e.mustCode(0, "run", "j", "--", "true")
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(events, ", "); got != "got /ping/u/start, answered /ping/u/start, got /ping/u" {
		t.Fatalf("the check heard: %s", got)
	}
}

// procState is a process' state letter from /proc ("" when it is gone).
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return ""
	}
	return string(b[i+2])
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	return pid
}

// A stopped run's stragglers are its whole process tree: a process that
// left the command's process group (setsid) is SIGKILLed at --kill-after as
// well as one that stayed. While they live, the command (the group's
// leader) stays an unreaped zombie, so the group id the supervisor signals
// cannot be recycled by another process.
func TestStragglersKilledWithoutRecycledIDs(t *testing.T) {
	e := newEnv(t)
	mark := filepath.Join(e.dir, "pid")
	script := `setsid sh -c 'trap "" TERM; echo $$ > "$0"; exec sleep 60' "$1.escaped" &
sh -c 'trap "" TERM; echo $$ > "$0"; exec sleep 60' "$1.group" &
wait`
	w, leader := e.startRun("s", "--kill-after", "1500ms", "s", "--", "/bin/sh", "-c", script, "sh", mark)
	escaped, grouped := readPID(t, mark+".escaped"), readPID(t, mark+".group")
	must(t, w.Process.Signal(syscall.SIGTERM))
	waitFor(t, "the command to exit on SIGTERM", func() bool { return procState(leader) == "Z" })
	time.Sleep(300 * time.Millisecond)
	if procState(leader) != "Z" || !alive(escaped) || !alive(grouped) {
		t.Fatalf("during the grace: leader %q (want an unreaped zombie), stragglers alive %v %v", procState(leader), alive(escaped), alive(grouped))
	}
	if err := w.Wait(); exitCode(err) != 143 {
		t.Fatalf("helper exit %d, want 143", exitCode(err))
	}
	for _, p := range []int{escaped, grouped} {
		if alive(p) {
			t.Fatalf("straggler %d outlived --kill-after (the setsid one left the group: %v)", p, p == escaped)
		}
	}
	if procState(leader) != "" {
		t.Fatalf("the command was not reaped: %q", procState(leader))
	}
}

// A command that exits leaving processes behind keeps its lock group busy
// while they live (its holder record), and frees it once they are gone.
func TestLeftBehindKeepsTheGroupBusy(t *testing.T) {
	e := newEnv(t)
	mark := filepath.Join(e.dir, "pid")
	// (The leftover lets go of the test's output pipes, or the test would
	// wait for it.)
	e.mustCode(0, "run", "--lock", "g", "bg", "--", "/bin/sh", "-c", `sleep 60 >/dev/null 2>&1 & echo $! > "$1"`, "sh", mark)
	left := readPID(t, mark)
	defer syscall.Kill(left, syscall.SIGKILL)
	r := e.mustCode(75, "run", "--lock", "g", "other", "--", "true")
	if !strings.Contains(r.stderr, "lock-busy: lock group g: processes of job bg's run") {
		t.Fatalf("the sibling beside what bg left: %s", r.stderr)
	}
	if d := e.mustCode(1, "drain", "--timeout", "300ms"); !strings.Contains(d.stdout, "lock group g: processes of job bg's run") {
		t.Fatalf("drain beside what bg left: %s", d.stdout)
	}
	must(t, syscall.Kill(left, syscall.SIGKILL))
	waitFor(t, "the leftover to exit", func() bool { return !alive(left) })
	e.mustCode(0, "run", "--lock", "g", "other", "--", "true")
	e.mustCode(0, "drain", "--timeout", "5s")
}
