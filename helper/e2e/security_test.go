package e2e

// The trust boundary (docs/security.md), attacked the way a job's
// user would attack it: real processes of other uids, against the layout the
// role deploys (state, lock and metrics dirs owned by the supervisor account,
// the gate root's, each job's data dir its user's), with tickgate run as
// systemd runs it: as the supervisor account holding CAP_SETUID, CAP_SETGID
// and CAP_KILL as ambient capabilities.
//
// Each attack asserts: the attacker is refused, the other job is unaffected,
// nothing outside is created or changed, and tickgate says clearly what it
// met, in bounded time. Where the attacker cannot even plant the thing any
// more, the same thing is planted by root (a host with an older layout, or
// an operator's mistake) to show the file code under the boundary holds too.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tickgate/tickgate/helper/execshim"
	"github.com/tickgate/tickgate/helper/safefs"
)

// Uids with no passwd entry (tickgate accepts bare uids, as systemd does).
const (
	supUID = 64200 // the supervisor account
	uidA   = 64201 // job a's user (the victim)
	uidB   = 64202 // job b's user (the attacker)
)

// bound is how long any tickgate command may take here before it counts as
// hanging: the state lock's own bound is 5 s.
const bound = 20 * time.Second

type secEnv struct {
	*env
	data, outside string
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the security suite runs processes as other users: CI must run it as root")
		}
		t.Skip("needs root to run processes as other users")
	}
}

func newSecEnv(t *testing.T) *secEnv {
	needRoot(t)
	e := newEnv(t)
	s := &secEnv{env: e, data: e.dir + "/data", outside: e.dir + "/outside"}
	must(t, e.layOutForSupervisor(map[string]int{"a": uidA, "b": uidB}))
	for _, d := range []string{s.outside, filepath.Dir(e.gate)} {
		must(t, os.MkdirAll(d, 0o755))
	}
	e.owners = safefs.NewOwners(strconv.Itoa(supUID))
	e.writeGate(`{"closed": false}`)
	// One tick of each job, as systemd would run it.
	s.tick(t, "a", 0)
	s.tick(t, "b", 0)
	return s
}

// layOutForSupervisor lays e out as the role does for non-root jobs: the
// state, lock and metrics dirs the supervisor account's (supUID), each job's
// data dir (DIR/data/JOB) its user's (jobs: job name to uid), every level
// down to them searchable by the other uids; tickgate told the supervisor.
func (e *env) layOutForSupervisor(jobs map[string]int) error {
	for p := e.dir; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{e.stateDir, e.lockDir, e.metricDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.Chown(d, supUID, supUID); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(e.dir, "data"), 0o755); err != nil {
		return err
	}
	for job, uid := range jobs {
		d := filepath.Join(e.dir, "data", job)
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
		if err := os.Chown(d, uid, uid); err != nil {
			return err
		}
	}
	e.extraEnv = append(e.extraEnv, "TICKGATE_SUPERVISOR="+strconv.Itoa(supUID))
	return nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// asUID runs argv as uid; caps gives it the supervisor's ambient
// capabilities, as the units' AmbientCapabilities= does.
func (s *secEnv) asUID(uid int, caps bool, argv ...string) (result, time.Duration) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Env = s.cmd().Env
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}}
	if caps {
		c.SysProcAttr.AmbientCaps = []uintptr{unix.CAP_SETUID, unix.CAP_SETGID, unix.CAP_KILL}
	}
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	start := time.Now()
	err := c.Run()
	took := time.Since(start)
	if ctx.Err() != nil {
		s.t.Fatalf("%v as uid %d did not finish within %s (killed): stderr %s", argv, uid, bound, errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("running %v: %v", argv, err)
	}
	return result{code, out.String(), errb.String()}, took
}

// tick runs one tick of job (its user: uidA for a, uidB for b) as the
// supervisor, and checks its exit code.
func (s *secEnv) tick(t *testing.T, job string, want int, cmd ...string) result {
	t.Helper()
	uid := map[string]int{"a": uidA, "b": uidB}[job]
	if len(cmd) == 0 {
		cmd = []string{"true"}
	}
	args := append([]string{tickBin, "run", "--user", strconv.Itoa(uid), job, "--"}, cmd...) // as the units run it
	r, _ := s.asUID(supUID, true, args...)
	if r.code != want {
		t.Fatalf("tick of %s: exit %d, want %d\nstderr: %s", job, r.code, want, r.stderr)
	}
	return r
}

// attacker runs a shell command as job b's user; it must fail.
func (s *secEnv) attackFails(t *testing.T, what, script string) {
	t.Helper()
	r, _ := s.asUID(uidB, false, "/bin/sh", "-c", script)
	if r.code == 0 {
		t.Fatalf("%s: the attacker (uid %d) succeeded: %s%s", what, uidB, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "ermission denied") && !strings.Contains(r.stderr, "not permitted") {
		t.Fatalf("%s: failed, but not for lack of permission: %s", what, r.stderr)
	}
}

// root runs tickgate as root (an operator) and returns the result and time.
func (s *secEnv) root(args ...string) (result, time.Duration) {
	s.t.Helper()
	return s.asUID(0, false, append([]string{bin}, args...)...)
}

func (s *secEnv) outsideUntouched(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(s.outside)
	must(t, err)
	if len(entries) != 0 {
		t.Fatalf("something was created outside tickgate's dirs: %v", entries)
	}
}

func fileMode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	must(t, err)
	return fi.Mode()
}

// The layout itself: nothing tickgate decides on is writable by a job user,
// and a job's command runs as its own user with no capabilities and cannot
// signal its supervisor.
func TestSecurityLayoutAndChildPrivileges(t *testing.T) {
	s := newSecEnv(t)
	for _, p := range []string{s.stateDir, s.stateDir + "/a", s.lockDir, s.metricDir} {
		fi, err := os.Stat(p)
		must(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != supUID || fi.Mode().Perm()&0o022 != 0 {
			t.Fatalf("%s: uid %d mode %v, want the supervisor's and not group/other-writable", p, st.Uid, fi.Mode())
		}
	}
	for _, p := range []string{s.lockDir + "/a.lock", s.stateDir + "/a/.state.lock"} {
		if m := fileMode(t, p).Perm(); m != 0o600 {
			t.Fatalf("%s: mode %v, want 0600", p, m)
		}
	}
	script := `id -u; id -g; echo "home=$HOME data=$TICKGATE_DATA_DIR"; grep '^Cap' /proc/self/status
kill -STOP $PPID 2>/dev/null && echo SIGNALLED-SUPERVISOR; exit 0`
	r := s.tick(t, "a", 0, "/bin/sh", "-c", script)
	lines := strings.Split(r.stdout, "\n")
	if lines[0] != strconv.Itoa(uidA) || lines[1] != strconv.Itoa(uidA) {
		t.Fatalf("job ran as uid/gid %q/%q, want %d", lines[0], lines[1], uidA)
	}
	if !strings.Contains(r.stdout, "home=/ data="+s.data+"/a") {
		t.Fatalf("job environment: %s", r.stdout)
	}
	for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapAmb"} {
		if !strings.Contains(r.stdout, set+":\t0000000000000000") {
			t.Fatalf("the job holds capabilities (%s not empty):\n%s", set, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "SIGNALLED-SUPERVISOR") {
		t.Fatal("the job could stop its supervisor")
	}
	// Job b's user cannot read or write job a's data dir.
	s.attackFails(t, "read another job's data dir", "ls "+s.data+"/a")
}

// Starving a lock group: open another group's lock file and flock it.
func TestAttackStarveLockGroup(t *testing.T) {
	s := newSecEnv(t)
	s.attackFails(t, "flock a's lock file", "exec 9<"+s.lockDir+"/a.lock && flock -n 9 && sleep 3")
	s.tick(t, "a", 0)
}

// Holding another job's state lock made its ticks hang (ignoring SIGTERM) and
// root's clear/halt of it hang too.
func TestAttackHoldStateLock(t *testing.T) {
	s := newSecEnv(t)
	s.attackFails(t, "flock a's state lock", "exec 9<"+s.stateDir+"/a/.state.lock && flock -n 9 && sleep 3")
	// Planted by root: every wait is bounded and says what it waited for.
	holder := exec.Command("flock", s.stateDir+"/a/.state.lock", "sleep", "30")
	must(t, holder.Start())
	defer func() { _ = holder.Process.Kill(); _ = holder.Wait() }()
	time.Sleep(100 * time.Millisecond)
	r, took := s.root("halt", "--reason", "x", "a")
	if r.code != 70 || !strings.Contains(r.stderr, "state lock not taken within 5s") {
		t.Fatalf("halt with a held state lock: exit %d after %s: %s", r.code, took, r.stderr)
	}
	t.Logf("root halt gave up on a held state lock after %s", took.Round(time.Millisecond))
	// A tick stops waiting when systemd stops it.
	c := exec.Command(bin, "run", "a", "--", "true")
	c.Env = s.cmd().Env
	var errb bytes.Buffer
	c.Stderr = &errb
	must(t, c.Start())
	time.Sleep(300 * time.Millisecond)
	must(t, c.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	start := time.Now()
	select {
	case <-done:
		t.Logf("a tick waiting on a held state lock ended %s after SIGTERM", time.Since(start).Round(time.Millisecond))
		if time.Since(start) > 2*time.Second {
			t.Fatalf("a tick waiting on a held state lock took %s to honour SIGTERM: %s", time.Since(start), errb.String())
		}
	case <-time.After(bound):
		_ = c.Process.Kill()
		t.Fatalf("a tick waiting on a held state lock ignored SIGTERM for %s", bound)
	}
}

// Removing a lock file while its holder runs let the next job of the group
// start alongside.
func TestAttackRemoveOrReplaceLockFile(t *testing.T) {
	s := newSecEnv(t)
	s.attackFails(t, "remove a's lock file", "rm -f "+s.lockDir+"/a.lock")
	s.attackFails(t, "replace a's lock file", "ln -sf "+s.stateDir+"/a/halted "+s.lockDir+"/new.lock")
	s.attackFails(t, "plant a FIFO as a lock", "mkfifo "+s.lockDir+"/c.lock")
	if _, err := os.Stat(s.lockDir + "/a.lock"); err != nil {
		t.Fatal(err)
	}
}

// A lock-file symlink to another job's marker (or to a root job's state
// lock), and a FIFO at a lock path: planted by root, a tick refuses them at
// once, creates nothing and names the file.
func TestAttackPlantedLockSymlinkAndFIFO(t *testing.T) {
	s := newSecEnv(t)
	must(t, os.Remove(s.lockDir+"/a.lock"))
	must(t, os.Symlink(s.stateDir+"/b/halted", s.lockDir+"/a.lock"))
	r := s.tick(t, "a", 70)
	if !strings.Contains(r.stderr, "a.lock: is a symbolic link (not followed)") {
		t.Fatalf("symlinked lock: %s", r.stderr)
	}
	if _, err := os.Lstat(s.stateDir + "/b/halted"); err == nil {
		t.Fatal("the tick created job b's halted marker through the link")
	}
	s.tick(t, "b", 0)

	must(t, os.Remove(s.lockDir+"/a.lock"))
	must(t, unix.Mkfifo(s.lockDir+"/a.lock", 0o600))
	must(t, os.Chown(s.lockDir+"/a.lock", supUID, supUID))
	r = s.tick(t, "a", 70)
	if !strings.Contains(r.stderr, "not a regular file (a FIFO)") {
		t.Fatalf("FIFO lock: %s", r.stderr)
	}
}

// The job field read from state.json was joined into the metrics path: root
// 'clear a' rewrote a file elsewhere, 'halt' created new ones.
func TestAttackJobFieldSteersRootWrites(t *testing.T) {
	s := newSecEnv(t)
	s.attackFails(t, "rewrite a's state", "echo '{}' > "+s.stateDir+"/a/state.json")
	planted := `{"job": "../../outside/node", "lock": "a", "result": "failed"}`
	must(t, os.WriteFile(s.stateDir+"/a/state.json", []byte(planted), 0o644))
	for _, args := range [][]string{{"clear", "a"}, {"halt", "--reason", "x", "a"}} {
		if r, _ := s.root(args...); r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
	}
	s.outsideUntouched(t)
	prom, err := os.ReadFile(s.metricDir + "/tickgate_a.prom")
	must(t, err)
	if !strings.Contains(string(prom), `job="a"`) || strings.Contains(string(prom), "outside") {
		t.Fatalf("metrics of a: %s", prom)
	}
	st := s.state("a")
	if st.Job != "a" {
		t.Fatalf("state of a says job %q", st.Job)
	}
}

// A .state.lock symlink made root 'halt' create an empty file anywhere; a
// state.json symlink to a root-only file made root 'clear' copy its fields
// into a world-readable state.json.
func TestAttackPlantedStateSymlinks(t *testing.T) {
	s := newSecEnv(t)
	s.attackFails(t, "plant a state lock link", "ln -sf "+s.outside+"/created "+s.stateDir+"/a/.state.lock2")
	must(t, os.Remove(s.stateDir+"/a/.state.lock"))
	must(t, os.Symlink(s.outside+"/created", s.stateDir+"/a/.state.lock"))
	r, _ := s.root("halt", "--reason", "x", "a")
	if r.code != 70 || !strings.Contains(r.stderr, ".state.lock: is a symbolic link (not followed)") {
		t.Fatalf("halt through a linked state lock: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Lstat(s.outside + "/created"); err == nil {
		t.Fatal("root halt created a file through the link")
	}
	must(t, os.Remove(s.stateDir+"/a/.state.lock"))

	secret := s.dir + "/secret.json"
	must(t, os.WriteFile(secret, []byte(`{"job":"a","reason":"TOP-SECRET","runs_total":99}`), 0o600))
	must(t, os.Remove(s.stateDir+"/a/state.json"))
	must(t, os.Symlink(secret, s.stateDir+"/a/state.json"))
	r, _ = s.root("clear", "a")
	if r.code != 70 || !strings.Contains(r.stderr, "state.json: is a symbolic link (not followed)") {
		t.Fatalf("clear with a linked state.json: exit %d: %s", r.code, r.stderr)
	}
	if fi, err := os.Lstat(s.stateDir + "/a/state.json"); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("the planted link was replaced: root read through it")
	}
	st, _ := s.root("status", "--no-systemd", "--json", "a")
	if strings.Contains(st.stdout, "TOP-SECRET") || !strings.Contains(st.stdout, "symbolic link") {
		t.Fatalf("status of a linked state.json: %s", st.stdout)
	}
	s.outsideUntouched(t)
}

// A FIFO as state.json or as a marker hung status and drain (so every deploy
// stalled); state.json -> /dev/zero made drain run out of memory.
func TestAttackFIFOAndZeroHangStatusDrain(t *testing.T) {
	s := newSecEnv(t)
	s.attackFails(t, "plant a FIFO as a marker", "mkfifo "+s.stateDir+"/a/halted")
	must(t, os.Remove(s.stateDir+"/a/state.json"))
	must(t, unix.Mkfifo(s.stateDir+"/a/state.json", 0o644))
	must(t, unix.Mkfifo(s.stateDir+"/a/halted", 0o644))
	must(t, os.Remove(s.stateDir+"/b/state.json"))
	must(t, os.Symlink("/dev/zero", s.stateDir+"/b/state.json"))
	must(t, os.WriteFile(s.stateDir+"/b/done", bytes.Repeat([]byte("x"), 200<<10), 0o644))

	r, took := s.root("status", "--no-systemd")
	if r.code != 1 || !strings.Contains(r.stdout, "ERROR: ") || !strings.Contains(r.stderr, "2 job(s) could not be read") ||
		!strings.Contains(r.stderr, "state/a/state.json: not a regular file (a FIFO)") || !strings.Contains(r.stderr, "state/a/halted: not a regular file (a FIFO)") ||
		!strings.Contains(r.stderr, "state/b/state.json: is a symbolic link (not followed)") || !strings.Contains(r.stderr, "state/b/done: larger than the read cap") {
		t.Fatalf("status: exit %d after %s\n%s%s", r.code, took, r.stdout, r.stderr)
	}
	r, took = s.root("drain", "--timeout", "5s")
	if r.code != 0 {
		t.Fatalf("drain: exit %d after %s: %s%s", r.code, took, r.stdout, r.stderr)
	}
	t.Logf("status and drain over planted FIFOs, /dev/zero and a 200 KiB marker: drain %s", took.Round(time.Millisecond))
	// The job itself does not run for its (unreadable) halted marker; with a
	// FIFO as state.json the skip cannot be recorded, which it says (70).
	if r := s.tick(t, "a", 70); !strings.Contains(r.stderr, "unreadable marker") || !strings.Contains(r.stderr, "state.json: not a regular file (a FIFO)") {
		t.Fatalf("tick of a with a FIFO marker: %s", r.stderr)
	}
	// A state.json that cannot be read is never moved aside as if corrupt
	// (the job would start again from an empty record, its breaker reset).
	if fileMode(t, s.stateDir+"/a/state.json")&os.ModeNamedPipe == 0 {
		t.Fatal("the unreadable state.json was replaced")
	}
	if _, err := os.Lstat(s.stateDir + "/a/state.json.corrupt"); err == nil {
		t.Fatal("an unreadable state.json was moved aside as corrupt")
	}
}

// The metrics dir was group-writable: other jobs' files could be replaced,
// deleted or faked, and a directory squatted at a root job's .prom path
// made it exit 70 on every tick.
func TestAttackMetrics(t *testing.T) {
	s := newSecEnv(t)
	p := s.metricDir + "/tickgate_a.prom"
	before, err := os.ReadFile(p)
	must(t, err)
	s.attackFails(t, "delete a's metrics", "rm -f "+p)
	s.attackFails(t, "fake a's metrics", "echo 'tickgate_halted{job=\"a\"} 1' > "+p)
	s.attackFails(t, "fake another job's metrics", "echo x > "+s.metricDir+"/tickgate_root.prom")
	s.attackFails(t, "squat a dir at a job's metrics path", "mkdir "+s.metricDir+"/tickgate_c.prom")
	after, err := os.ReadFile(p)
	must(t, err)
	if !bytes.Equal(before, after) {
		t.Fatal("a's metrics changed")
	}
	s.tick(t, "a", 0)
}

// Temp files a SIGKILLed writer left are removed by the next write of the
// same file: every writer holds the lock that serialises writers of that
// file, so the temp file has one fixed name and no directory is listed.
func TestSecurityTempFilesSwept(t *testing.T) {
	s := newSecEnv(t)
	byTick := []string{s.stateDir + "/a/" + safefs.HeldTemp("state.json"), s.metricDir + "/" + safefs.HeldTemp("tickgate_a.prom")}
	byHalt := s.stateDir + "/a/" + safefs.HeldTemp("halted")
	for _, p := range append(byTick, byHalt) {
		must(t, os.WriteFile(p, []byte("{"), 0o644))
	}
	s.tick(t, "a", 0)
	for _, p := range byTick {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s was left behind by a tick", p)
		}
	}
	if r, _ := s.root("halt", "--reason", "sweep", "a"); r.code != 0 {
		t.Fatalf("halt: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Lstat(byHalt); err == nil {
		t.Fatalf("%s was left behind by halt", byHalt)
	}
	if m, err := os.ReadFile(s.stateDir + "/a/halted"); err != nil || !strings.Contains(string(m), "sweep") {
		t.Fatalf("halted marker: %q, %v", m, err)
	}
}

// A done/halted outcome that cannot be written (disk full, read-only) is
// tried again, then fails the tick loudly (70, naming the marker and what
// happens next) instead of letting the job silently run again.
func TestMarkerWriteFailureIsLoud(t *testing.T) {
	s := newSecEnv(t)
	must(t, os.Chmod(s.stateDir+"/a", 0o555)) // the supervisor can no longer write there
	r, _ := s.asUID(supUID, true, bin, "run", "--user", strconv.Itoa(uidA), "--ok-codes", "3", "--done-codes", "0", "a", "--", "true")
	if r.code != 70 || !strings.Contains(r.stderr, "the done marker was NOT written (3 tries)") ||
		!strings.Contains(r.stderr, "the job will run again at its next tick unless an operator runs `tickgate halt a`") {
		t.Fatalf("unwritable done marker: exit %d: %s", r.code, r.stderr)
	}
}

// 'halt' that wrote its marker exits 0, with a warning for what it could not
// refresh afterwards.
func TestHaltWithUnreadableStateStillHalts(t *testing.T) {
	s := newSecEnv(t)
	must(t, os.Remove(s.stateDir+"/a/state.json"))
	must(t, unix.Mkfifo(s.stateDir+"/a/state.json", 0o644))
	r, _ := s.root("halt", "--reason", "bad data", "a")
	if r.code != 0 || !strings.Contains(r.stderr, "warning: job a: halted, but state not updated") {
		t.Fatalf("halt: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(s.stateDir + "/a/halted"); err != nil {
		t.Fatal("no halted marker")
	}
}

// What a job must still do from inside works without write access to
// tickgate's files: 'tickgate gate check' as the job's user reads the gate
// and its markers in the supervisor's directories.
func TestGateCheckAsJobUser(t *testing.T) {
	s := newSecEnv(t)
	s.extraEnv = append(s.extraEnv, "PATH="+filepath.Dir(bin)+":/usr/bin:/bin")
	if r, _ := s.root("gate", "rollout", "--at", "+1h", "--reason", "release"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	script := `tickgate gate check; echo "now=$?"; tickgate gate check --expected-runtime 2h 2>&1; echo "long=$?"`
	r := s.tick(t, "a", 0, "/bin/sh", "-c", script)
	if !strings.Contains(r.stdout, "now=0") || !strings.Contains(r.stdout, "long=75") || !strings.Contains(r.stdout, "rollout-window") {
		t.Fatalf("gate check inside the job as uid %d: %s", uidA, r.stdout)
	}
}

// A job's user backs off only its own lock group, through its supervisor:
// it cannot plant or change another group's back-off in the lock dir, nor
// name another group, nor flood its supervisor.
func TestAttackBackoff(t *testing.T) {
	s := newSecEnv(t)
	s.attackFails(t, "plant a back-off for a's group", "echo '{}' > "+s.lockDir+"/a.backoff")
	s.attackFails(t, "back off a's group by hand", bin+" backoff --lock a --for 1h --reason mine")
	// Job b asks for its own group (through fd 4): granted; a is not touched.
	s.tick(t, "b", 0, bin, "backoff", "--for", "1h", "--reason", "429")
	if _, err := os.Stat(s.lockDir + "/a.backoff"); err == nil {
		t.Fatal("a back-off appeared for a's group")
	}
	// Naming a's group from inside b (b's run in another group): not
	// through the supervisor, so the lock dir's permissions refuse it.
	r, took := s.asUID(supUID, true, bin, "run", "--user", strconv.Itoa(uidB), "--lock", "bg", "b", "--",
		bin, "backoff", "--lock", "a", "--for", "1h", "--reason", "steal")
	if r.code != 1 || !strings.Contains(r.stderr, "ermission denied") {
		t.Fatalf("b naming a's group: exit %d after %s\n%s", r.code, took, r.stderr)
	}
	if _, err := os.Stat(s.lockDir + "/a.backoff"); err == nil {
		t.Fatal("b backed off a's group")
	}
	s.tick(t, "a", 0)
	// A flood of requests: the supervisor stops answering after its cap,
	// the tick ends normally.
	r, took = s.asUID(supUID, true, bin, "run", "--user", strconv.Itoa(uidA), "--lock", "flood", "a", "--", "sh", "-c",
		`i=0; while [ $i -lt 40 ]; do "$0" backoff --for "$((i + 1))m" --reason flood >/dev/null 2>&1; i=$((i + 1)); done; "$0" backoff --for 2h --reason last`, bin)
	if r.code != 1 || !strings.Contains(r.stderr, "too many requests") {
		t.Fatalf("flood: exit %d after %s\n%s", r.code, took, r.stderr)
	}
}

// The shim a non-root job starts through: tickgate-exec beside the helper
// when no one but root (or the helper's owner) could have changed it,
// tickgate itself otherwise, with a warning naming the file. Either way the
// job's program holds no capabilities.
func TestSecurityShimChoice(t *testing.T) {
	s := newSecEnv(t)
	realShim := filepath.Join(filepath.Dir(bin), execshim.Name)
	helper, err := os.ReadFile(bin)
	must(t, err)
	// A stand-in shim that leaves a mark in the job's data dir, then hands
	// over to the real one.
	recorder := "#!/bin/sh\n: >\"$TICKGATE_DATA_DIR/shim-used\"\nexec " + realShim + " \"$@\"\n"
	plant := func(mode os.FileMode, uid int) func(string) {
		return func(dir string) {
			p := filepath.Join(dir, execshim.Name)
			must(t, os.WriteFile(p, []byte(recorder), 0o755))
			must(t, os.Chmod(p, mode))
			must(t, os.Chown(p, uid, uid))
		}
	}
	symlink := func(dir string) {
		target := filepath.Join(dir, "elsewhere")
		plant(0o755, 0)(dir)
		must(t, os.Rename(filepath.Join(dir, execshim.Name), target))
		must(t, os.Symlink(target, filepath.Join(dir, execshim.Name)))
	}
	script := `grep '^Cap' /proc/self/status; if [ -e "$TICKGATE_DATA_DIR/shim-used" ]; then echo SHIM-USED; rm "$TICKGATE_DATA_DIR/shim-used"; fi`
	for _, c := range []struct {
		name  string
		plant func(dir string)
		used  bool
		warn  string // "": no warning
	}{
		{"not installed", func(string) {}, false, ""},
		{"root's, 0755", plant(0o755, 0), true, ""},
		{"group-writable", plant(0o775, 0), false, "is writable by group or others"},
		{"another user's", plant(0o755, uidB), false, "is owned by uid " + strconv.Itoa(uidB)},
		{"a symbolic link", symlink, false, "is not a regular file"},
	} {
		dir, err := os.MkdirTemp(s.dir, "shim-")
		must(t, err)
		must(t, os.Chmod(dir, 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "tickgate"), helper, 0o755))
		c.plant(dir)
		r, _ := s.asUID(supUID, true, filepath.Join(dir, "tickgate"), "run", "--user", strconv.Itoa(uidA), "a", "--", "/bin/sh", "-c", script)
		if r.code != 0 {
			t.Fatalf("%s: tick: exit %d: %s", c.name, r.code, r.stderr)
		}
		for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapAmb"} {
			if !strings.Contains(r.stdout, set+":\t0000000000000000") {
				t.Fatalf("%s: the job holds capabilities (%s not empty):\n%s", c.name, set, r.stdout)
			}
		}
		if used := strings.Contains(r.stdout, "SHIM-USED"); used != c.used {
			t.Fatalf("%s: %s beside the helper used: %v, want %v\nstdout: %s\nstderr: %s", c.name, execshim.Name, used, c.used, r.stdout, r.stderr)
		}
		warned := strings.Contains(r.stderr, "not using "+execshim.Name)
		if c.warn == "" && warned || c.warn != "" && (!warned || !strings.Contains(r.stderr, c.warn)) {
			t.Fatalf("%s: warning: want %q, stderr: %s", c.name, c.warn, r.stderr)
		}
	}
}
