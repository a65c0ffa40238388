package cronimport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/tickgate/tickgate/helper/calendar"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/sysprog"
)

// Options say how to read the paths.
type Options struct {
	User   string // the owner of a file read as a user crontab (default root)
	System bool   // read every file in system format (a user column)
}

// Job is one converted entry.
type Job struct {
	Name        string
	Command     []string
	Schedule    []string
	User        string
	WorkDir     string
	Environment map[string]string
	Lock        string
	LockWait    string
	Timeout     string
	Nice        *int
	IOClass     string
	Persistent  bool
	Delay       string // randomized_delay
	Source      string // file:line: the line, for the comment above the job
	Notes       []string
	// Replaces is the cron line the job takes over when deployed
	// (replaces_cron): the crontab as the host has it, and the line.
	ReplacesFile, ReplacesMatch string

	base    string // the name before it was made unique
	lockKey string // what shares a lock group (a lock file, a run-parts dir)
}

// Problem is an entry that did not convert.
type Problem struct {
	Where string // file:line (or the file)
	Why   string
}

func (p Problem) String() string { return p.Where + ": " + p.Why }

// Result is an import: the jobs, and what did not convert.
type Result struct {
	Jobs     []*Job
	Problems []Problem
	Entries  int // entries seen (jobs + problems)
	Sources  []string
	// Unchecked says why the schedules were not checked ("" = they were).
	Unchecked string
}

// ErrUsage marks a problem with the paths given (not with their content).
var ErrUsage = errors.New("usage")

// Import reads every path: a file as a crontab, a directory as a run-parts
// directory.
func Import(paths []string, o Options) (*Result, error) {
	if o.User == "" {
		o.User = "root"
	}
	res := &Result{}
	var dirs []string
	var files []*crontab
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrUsage, p, err)
		}
		res.Sources = append(res.Sources, p)
		if fi.IsDir() {
			dirs = append(dirs, p)
			continue
		}
		system := o.System || isSystemCrontab(p)
		user := o.User
		if u, ok := spoolUser(p); ok && !system {
			user = u
		}
		ct, err := readCrontab(p, system, user)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrUsage, p, err)
		}
		files = append(files, ct)
	}
	// A line that runs run-parts on a directory imported here is that
	// directory's schedule, not a job of its own.
	consumed := map[*line]bool{}
	for _, d := range dirs {
		res.importDir(d, files, consumed)
	}
	for _, ct := range files {
		for _, l := range ct.lines {
			if consumed[l] {
				continue
			}
			res.Entries++
			if l.err != nil {
				res.Problems = append(res.Problems, Problem{l.where(), l.err.Error()})
				continue
			}
			j, err := l.job()
			if err != nil {
				res.Problems = append(res.Problems, Problem{l.where(), err.Error()})
				continue
			}
			res.Jobs = append(res.Jobs, j)
		}
	}
	res.name()
	res.locks()
	return res, nil
}

// hostPath is where a crontab read from path is on its host: path itself
// under /etc or cron's spool, the same place in a copy of a host's files
// (DIR/etc/cron.d/x), else (a crontab -l copy) user's crontab in Debian's
// spool.
func hostPath(path, user string) string {
	abs := path
	if a, err := filepath.Abs(path); err == nil {
		abs = a
	}
	for _, at := range []string{"/etc/crontab", "/etc/cron.d/", "/var/spool/cron/"} {
		if i := strings.LastIndex(abs, at); i >= 0 {
			return abs[i:]
		}
	}
	return "/var/spool/cron/crontabs/" + user
}

// spoolUser is the owner of a user crontab in cron's spool, named after its
// user: /var/spool/cron/crontabs/USER (Debian), /var/spool/cron/USER (Red Hat).
func spoolUser(p string) (string, bool) {
	dir := filepath.Dir(filepath.Clean(p))
	if filepath.Base(dir) == "crontabs" || strings.HasSuffix(dir, "/spool/cron") {
		return filepath.Base(p), true
	}
	return "", false
}

// isSystemCrontab says whether p is read in system format: /etc/crontab or
// a file under a cron.d directory.
func isSystemCrontab(p string) bool {
	dir, base := filepath.Base(filepath.Dir(p)), filepath.Base(p)
	return (base == "crontab" && dir == "etc") || dir == "cron.d"
}

// crontab is a file's entries, each with the environment above it.
type crontab struct {
	path  string
	lines []*line
}

// line is one entry.
type line struct {
	path    string
	n       int
	text    string
	user    string
	spec    string // the five fields or @keyword
	command string
	env     map[string]string // as set above the line (PATH, SHELL, MAILTO, CRON_TZ, …)
	err     error             // the line does not parse
}

func (l *line) where() string { return fmt.Sprintf("%s:%d", l.path, l.n) }

var envLine = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$`)

// readCrontab reads a crontab; system says it has a user column.
func readCrontab(path string, system bool, user string) (*crontab, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ct := &crontab{path: path}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if m := envLine.FindStringSubmatch(text); m != nil && !strings.ContainsAny(strings.SplitN(text, "=", 2)[0], " \t*") {
			env[m[1]] = unquote(strings.TrimSpace(m[2]))
			continue
		}
		l := &line{path: path, n: n, text: text, user: user, env: maps.Clone(env)}
		fieldsN := 5
		if strings.HasPrefix(text, "@") {
			fieldsN = 1
		}
		parts := fieldsSplit(text, fieldsN+map[bool]int{true: 1}[system])
		switch {
		case len(parts) < fieldsN+map[bool]int{true: 1}[system]+1:
			l.err = errors.New("too few fields for a cron entry (time fields, " + map[bool]string{true: "user, "}[system] + "command)")
		default:
			l.spec = strings.Join(parts[:fieldsN], " ")
			rest := parts[fieldsN:]
			if system {
				l.user, rest = rest[0], rest[1:]
			}
			l.command = rest[0]
		}
		ct.lines = append(ct.lines, l)
	}
	return ct, sc.Err()
}

// fieldsSplit splits text at the first n runs of blanks: n fields, then the
// rest of the line as it is.
func fieldsSplit(text string, n int) []string {
	var out []string
	for len(out) < n {
		text = strings.TrimLeft(text, " \t")
		i := strings.IndexAny(text, " \t")
		if i < 0 {
			if text != "" {
				out = append(out, text)
			}
			return out
		}
		out = append(out, text[:i])
		text = text[i:]
	}
	if rest := strings.TrimLeft(text, " \t"); rest != "" {
		out = append(out, rest)
	}
	return out
}

// unquote strips one pair of matching quotes, as cron does.
func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// cronPath is the PATH cron gives a job unless the crontab sets one.
const cronPath = "/usr/bin:/bin"

// job converts the line.
func (l *line) job() (*Job, error) {
	zone := l.env["CRON_TZ"]
	if zone == "" {
		zone = l.env["TZ"]
	}
	sched, err := Schedule(l.spec, zone)
	if err != nil {
		return nil, err
	}
	text, err := Percent(l.command)
	if err != nil {
		return nil, err
	}
	shell := l.env["SHELL"]
	if shell == "" {
		shell = "/bin/sh"
	}
	cmd, err := ParseCommand(text, shell)
	if err != nil {
		return nil, err
	}
	j := &Job{Command: cmd.Argv, Schedule: sched, User: l.user, WorkDir: cmd.WorkDir,
		LockWait: cmd.LockWait, Timeout: cmd.Timeout, Nice: cmd.Nice, IOClass: cmd.IOClass,
		Source: fmt.Sprintf("%s: %s", l.where(), l.text), Notes: cmd.Notes,
		ReplacesFile: hostPath(l.path, l.user), ReplacesMatch: l.text}
	if j.User == "root" {
		j.User = ""
	}
	if cmd.Lock != "" {
		j.lockKey = "file:" + cmd.Lock
	}
	env := map[string]string{}
	for k, v := range l.env {
		switch k {
		case "CRON_TZ":
		case "MAILTO":
			if v != "" {
				j.Notes = append(j.Notes, fmt.Sprintf("MAILTO=%s mailed the output under cron: tickgate's notify (webhook, healthchecks) says when it fails", v))
			}
		case "MAILFROM", "CONTENT_TYPE", "CONTENT_TRANSFER_ENCODING", "CRON_CORRECT_MAIL_HEADER":
		case "HOME", "LOGNAME", "USER":
			if j.User != "" {
				j.Notes = append(j.Notes, fmt.Sprintf("%s=%s dropped: tickgate sets HOME, USER and LOGNAME from the job's user", k, v))
			} else {
				env[k] = v
			}
		default:
			if strings.HasPrefix(k, "TICKGATE_") {
				return nil, fmt.Errorf("%s: tickgate's own variables cannot be set for a job", k)
			}
			env[k] = v
		}
	}
	// Cron's PATH, unless the crontab set one, where a program is looked up.
	if _, ok := env["PATH"]; !ok && (!filepath.IsAbs(j.Command[0]) || len(j.Command) == 3 && j.Command[1] == "-c") {
		env["PATH"] = cronPath
	}
	if len(env) > 0 {
		j.Environment = env
	}
	j.base = baseName(j.Command)
	return j, nil
}

// baseName is a job name from its command: the program's file name; for
// a shell line, the first program it runs that is not a test or a shell
// word ("test -x /usr/sbin/anacron || /usr/lib/x/job" is "job").
func baseName(argv []string) string {
	prog := argv[0]
	if len(argv) == 3 && argv[1] == "-c" {
		if p := shellProgram(argv[2]); p != "" {
			prog = p
		}
	}
	return sanitize(filepath.Base(prog))
}

// shellWords start a command or are no program of the job's.
var shellWords = map[string]bool{"if": true, "then": true, "else": true, "elif": true, "fi": true, "do": true,
	"done": true, "while": true, "until": true, "for": true, "case": true, "esac": true, "{": true, "}": true,
	"!": true, "test": true, "[": true, "]": true, "[[": true, "]]": true, "true": true, "false": true, ":": true,
	"cd": true, "command": true, "exec": true, "export": true, "set": true, "exit": true}

// keywords after which a new command starts.
var startsCommand = map[string]bool{"if": true, "then": true, "else": true, "elif": true, "do": true,
	"while": true, "until": true, "!": true, "{": true}

func shellProgram(line string) string {
	words, _, err := split(line)
	if err != nil {
		return ""
	}
	start := true
	for _, w := range words {
		switch {
		case isOperator(w):
			start = true
		case !start:
		case startsCommand[w.text]:
		case strings.Contains(w.text, "=") && !strings.Contains(strings.SplitN(w.text, "=", 2)[0], "/"):
			// VAR=value before the program
		case shellWords[w.text]:
			start = false // a test or builtin: its words are not programs
		default:
			return w.text
		}
	}
	return ""
}

var nameBad = regexp.MustCompile(`[^a-z0-9_.-]+`)

// sanitize makes s a valid job name (^[a-z0-9][a-z0-9_.-]*$).
func sanitize(s string) string {
	s = nameBad.ReplaceAllString(strings.ToLower(s), "-")
	s = strings.TrimLeft(s, "_.-")
	if len(s) > 60 {
		s = s[:60]
	}
	s = strings.TrimRight(s, "_.-")
	if s == "" || state.ReservedJobs[s] {
		s = "cron-" + s
		s = strings.TrimRight(s, "-")
	}
	return s
}

// name makes every job's name unique: a name shared by several jobs gets
// a short hash of what the job is (its schedule, user and command), so it
// stays the same from one import to the next.
func (r *Result) name() {
	count := map[string]int{}
	for _, j := range r.Jobs {
		count[j.base]++
	}
	seen := map[string]bool{}
	for _, j := range r.Jobs {
		j.Name = j.base
		if count[j.base] > 1 {
			h := sha256.Sum256([]byte(strings.Join(j.Schedule, "\n") + "\x00" + j.User + "\x00" + strings.Join(j.Command, "\x00")))
			j.Name = j.base + "-" + hex.EncodeToString(h[:3])
		}
		for k := 2; seen[j.Name]; k++ { // the same entry twice
			j.Name = fmt.Sprintf("%s-%d", strings.TrimRight(j.Name, "0123456789-"), k)
		}
		seen[j.Name] = true
	}
}

// locks names the lock groups: jobs that held the same lock file, or came
// from one run-parts directory, share one, named after it.
func (r *Result) locks() {
	names := map[string]string{} // lockKey -> name
	taken := map[string]string{} // name -> lockKey
	var keys []string
	for _, j := range r.Jobs {
		if j.lockKey != "" {
			if _, ok := names[j.lockKey]; !ok {
				names[j.lockKey] = ""
				keys = append(keys, j.lockKey)
			}
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		_, what, _ := strings.Cut(k, ":")
		base := sanitizeLock(strings.TrimSuffix(filepath.Base(what), ".lock"))
		name := base
		if other, ok := taken[name]; ok && other != k {
			h := sha256.Sum256([]byte(k))
			name = base + "-" + hex.EncodeToString(h[:3])
		}
		names[k], taken[name] = name, k
	}
	for _, j := range r.Jobs {
		if j.lockKey != "" {
			j.Lock = names[j.lockKey]
		}
	}
}

var lockBad = regexp.MustCompile(`[^A-Za-z0-9_.@-]+`)

func sanitizeLock(s string) string {
	s = strings.TrimLeft(lockBad.ReplaceAllString(s, "-"), "_.@-")
	if s == "" {
		return "cron-lock"
	}
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// runPartsName is what run-parts runs: ^[a-zA-Z0-9_-]+$ (Debian's, the
// LSB names); anything else (foo.dpkg-old, README) it skips.
var runPartsName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// importDir imports a run-parts directory: a job per program in it, all
// in one lock group (run-parts ran them one after another), on the schedule
// of the anacrontab or crontab line that runs it, else its name's.
func (r *Result) importDir(dir string, files []*crontab, consumed map[*line]bool) {
	kind := strings.TrimPrefix(filepath.Base(filepath.Clean(dir)), "cron.")
	spec, zone, persistent, delay, from := "", "", false, "", ""
	replFile, replMatch := "", "" // the crontab line that runs the directory
	var env map[string]string
	// 1. an anacrontab beside it (/etc/anacrontab for /etc/cron.daily)
	if p := filepath.Join(filepath.Dir(filepath.Clean(dir)), "anacrontab"); fileExists(p) {
		if s, d, n, ok := anacronFor(p, filepath.Base(filepath.Clean(dir))); ok {
			spec, persistent, delay, from = s, true, d, fmt.Sprintf("%s:%d", p, n)
		}
	}
	// 2. a crontab line that runs run-parts on it: one of the files given,
	// or the crontab beside it
	if spec == "" {
		cands := files
		if p := filepath.Join(filepath.Dir(filepath.Clean(dir)), "crontab"); fileExists(p) && !given(files, p) {
			if ct, err := readCrontab(p, true, "root"); err == nil {
				cands = append(cands, ct)
			}
		}
		for _, ct := range cands {
			for _, l := range ct.lines {
				if l.err == nil && runsParts(l.command, dir) {
					spec, env, from = l.spec, l.env, l.where()
					replFile, replMatch = hostPath(l.path, l.user), l.text
					zone = l.env["CRON_TZ"]
					consumed[l] = true
				}
			}
		}
	}
	// 3. its name
	var sched []string
	if spec != "" {
		s, err := Schedule(spec, zone)
		if err != nil {
			r.Problems = append(r.Problems, Problem{from, fmt.Sprintf("the schedule of %s: %v", dir, err)})
			return
		}
		sched = s
	} else {
		switch kind {
		case "hourly", "daily", "weekly", "monthly", "yearly":
			sched, from = []string{kind}, "its name"
		default:
			r.Problems = append(r.Problems, Problem{dir, "no crontab or anacrontab line runs this directory, and its name is none of cron.hourly, cron.daily, cron.weekly, cron.monthly"})
			return
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		r.Problems = append(r.Problems, Problem{dir, err.Error()})
		return
	}
	abs := dir
	if a, err := filepath.Abs(dir); err == nil {
		abs = a
	}
	// The programs as the host has them: /etc/cron.daily/x, whatever copy
	// of the directory is read here.
	hostDir := "/etc/cron." + kind
	if strings.HasPrefix(abs, "/etc/") {
		hostDir = abs
	}
	for _, e := range entries {
		if !runPartsName.MatchString(e.Name()) {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			continue // run-parts runs executable regular files only
		}
		r.Entries++
		j := &Job{Command: []string{filepath.Join(hostDir, e.Name())}, Schedule: sched, Persistent: persistent, Delay: delay,
			Source:  fmt.Sprintf("%s (run-parts; schedule from %s)", filepath.Join(dir, e.Name()), from),
			lockKey: "dir:cron." + kind, base: sanitize(kind + "-" + e.Name()),
			// Every job of the directory replaces the line that ran it:
			// handed over with the first, back when the last is gone.
			ReplacesFile: replFile, ReplacesMatch: replMatch}
		if env != nil {
			if p, ok := env["PATH"]; ok {
				j.Environment = map[string]string{"PATH": p}
			}
		}
		if persistent {
			j.Notes = append(j.Notes, "anacron ran it once per period, catching up after downtime: persistent, with anacron's delay as randomized_delay")
		}
		r.Jobs = append(r.Jobs, j)
	}
}

func given(files []*crontab, p string) bool {
	for _, ct := range files {
		if filepath.Clean(ct.path) == filepath.Clean(p) {
			return true
		}
	}
	return false
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// runsParts says whether a crontab command runs run-parts on dir (by its
// name: the crontab names /etc/cron.daily, the copy read may be elsewhere).
func runsParts(command, dir string) bool {
	if !strings.Contains(command, "run-parts") {
		return false
	}
	name := filepath.Base(filepath.Clean(dir))
	words, _, err := split(command)
	if err != nil {
		return false
	}
	for _, w := range words {
		t := strings.TrimRight(w.text, "/")
		if t == name || strings.HasSuffix(t, "/"+name) {
			return true
		}
	}
	return false
}

// anacronFor finds the anacrontab line that runs run-parts on name
// (cron.daily): its period as a schedule, its delay in minutes.
func anacronFor(path, name string) (spec, delay string, n int, ok bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", 0, false
	}
	for i, text := range strings.Split(string(data), "\n") {
		text = strings.TrimSpace(text)
		if text == "" || strings.HasPrefix(text, "#") || envLine.MatchString(text) {
			continue
		}
		parts := fieldsSplit(text, 3)
		if len(parts) < 4 || !runsParts(parts[3], name) {
			continue
		}
		switch parts[0] {
		case "1", "@daily":
			spec = "@daily"
		case "7", "@weekly":
			spec = "@weekly"
		case "@monthly", "30", "31":
			spec = "@monthly"
		case "@yearly", "365":
			spec = "@yearly"
		default:
			return "", "", 0, false
		}
		if m, err := strconv.Atoi(parts[1]); err == nil && m > 0 {
			delay = fmt.Sprintf("%dmin", m)
		}
		return spec, delay, i + 1, true
	}
	return "", "", 0, false
}

// Check asks systemd-analyze calendar about every job's schedule: a job
// whose schedule it refuses, or that would never fire, becomes a problem.
// Without systemd-analyze nothing is checked, and Unchecked says why (the
// deploy's preflight checks every schedule on its host anyway).
func (r *Result) Check(ctx context.Context) {
	if _, err := sysprog.Find("systemd-analyze"); err != nil {
		r.Unchecked = err.Error()
		return
	}
	kept := r.Jobs[:0]
	for _, j := range r.Jobs {
		if _, err := calendar.Elapses(ctx, j.Schedule, 1); err != nil {
			why := err.Error()
			if errors.Is(err, calendar.ErrNever) {
				why = fmt.Sprintf("the schedule %q never fires (a day no month has)", j.Schedule)
			}
			r.Problems = append(r.Problems, Problem{strings.SplitN(j.Source, ": ", 2)[0], why})
			continue
		}
		kept = append(kept, j)
	}
	r.Jobs = kept
}

// Expand lists what path stands for: a cron.d directory its crontabs (the
// files cron reads there: run-parts names, no dots), cron's spool of user
// crontabs (crontabs/) its files, anything else itself.
func Expand(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	base := filepath.Base(filepath.Clean(path))
	if !fi.IsDir() || (base != "cron.d" && base != "crontabs") {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		ok := runPartsName.MatchString(n)
		if base == "crontabs" { // users' names; crontab -e's temporaries aside
			ok = !strings.HasPrefix(n, ".") && !strings.HasPrefix(n, "tmp.")
		}
		if ok && e.Type().IsRegular() {
			out = append(out, filepath.Join(path, n))
		}
	}
	return out, nil
}
