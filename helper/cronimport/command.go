package cronimport

import (
	"errors"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"
)

// word is one word of a command line as a POSIX shell splits it.
type word struct {
	text       string // after quote removal
	start, end int    // its bytes in the line
	plain      bool   // nothing in it a shell would expand, glob or treat as syntax
}

// operators a shell reads between words.
const operatorChars = "|&;<>()"

// split splits line into words as sh would, and says whether the line
// needs a shell: an operator (pipe, list, redirection, subshell), an
// expansion ($, `), a glob, a tilde, a comment, an assignment before the
// command, a brace group.
func split(line string) (words []word, shell bool, err error) {
	i := 0
	for i < len(line) {
		c := line[i]
		if c == ' ' || c == '\t' {
			i++
			continue
		}
		if strings.IndexByte(operatorChars, c) >= 0 {
			// An operator is a word of its own to the shell.
			words = append(words, word{text: string(c), start: i, end: i + 1})
			shell = true
			i++
			continue
		}
		w := word{start: i, plain: true}
		var b strings.Builder
	scan:
		for i < len(line) {
			c := line[i]
			switch {
			case c == ' ' || c == '\t' || strings.IndexByte(operatorChars, c) >= 0:
				break scan
			case c == '\'':
				j := strings.IndexByte(line[i+1:], '\'')
				if j < 0 {
					return nil, false, errors.New("a single quote is never closed")
				}
				b.WriteString(line[i+1 : i+1+j])
				i += j + 2
			case c == '"':
				i++
				for {
					if i >= len(line) {
						return nil, false, errors.New("a double quote is never closed")
					}
					c := line[i]
					if c == '"' {
						i++
						break
					}
					if c == '$' || c == '`' {
						w.plain = false
					}
					if c == '\\' && i+1 < len(line) && strings.IndexByte("$`\"\\", line[i+1]) >= 0 {
						b.WriteByte(line[i+1])
						i += 2
						continue
					}
					b.WriteByte(c)
					i++
				}
			case c == '\\':
				if i+1 >= len(line) {
					return nil, false, errors.New("a backslash ends the line")
				}
				b.WriteByte(line[i+1])
				i += 2
			default:
				switch {
				case c == '$' || c == '`' || c == '*' || c == '?' || c == '[':
					w.plain = false
				case (c == '~' || c == '#' || c == '{' || c == '}') && b.Len() == 0 && i == w.start:
					w.plain = false
				}
				b.WriteByte(c)
				i++
			}
		}
		w.text, w.end = b.String(), i
		if !w.plain {
			shell = true
		}
		words = append(words, w)
	}
	if len(words) > 0 && strings.Contains(words[0].text, "=") && words[0].plain {
		shell = true // VAR=value command
	}
	return words, shell, nil
}

// Command is what a crontab line's command becomes.
type Command struct {
	Argv     []string
	WorkDir  string // cd DIR && …
	Lock     string // the lock file a flock wrapper held ("" = none)
	LockWait string // how long flock waited ("" = not at all)
	Timeout  string // timeout N …
	Nice     *int
	IOClass  string
	Notes    []string // what a reader should know (comments in the output)
}

// ParseCommand turns a crontab line's command (cron's % already handled)
// into an argv, peeling the wrappers it knows off the front. shell is the
// crontab's SHELL (/bin/sh unless set).
func ParseCommand(line, shell string) (*Command, error) {
	cmd := &Command{}
	if err := cmd.parse(line, shell, 0); err != nil {
		return nil, err
	}
	return cmd, nil
}

func (cmd *Command) parse(line, shell string, depth int) error {
	if depth > 8 {
		return errors.New("wrappers nested too deep")
	}
	words, needShell, err := split(line)
	if err != nil {
		return err
	}
	if len(words) == 0 {
		return errors.New("no command")
	}
	rest := func(i int) string { return strings.TrimSpace(line[words[i].start:]) }
	plainUpTo := func(n int) bool { // words[0..n) are plain words, not operators
		if n > len(words) {
			return false
		}
		for _, w := range words[:n] {
			if !w.plain || isOperator(w) {
				return false
			}
		}
		return true
	}
	first := words[0]
	if first.plain && !isOperator(first) {
		switch path.Base(first.text) {
		case "flock":
			return cmd.flock(line, words, shell, depth)
		case "run-one":
			if len(words) > 1 && plainUpTo(1) {
				cmd.Notes = append(cmd.Notes, "run-one: a run is skipped while another runs, as tickgate's lock group does")
				return cmd.parse(rest(1), shell, depth+1)
			}
		case "run-one-constantly", "run-one-until-success", "run-one-until-failure", "keep-one-running", "run-this-one":
			return fmt.Errorf("%s: restarts or kills runs, which no tickgate field does; run the command itself", first.text)
		case "chronic":
			i := 1
			for i < len(words) && plainUpTo(i+1) && (words[i].text == "-e" || words[i].text == "-v" || words[i].text == "-ev" || words[i].text == "-ve") {
				i++
			}
			if i < len(words) {
				cmd.Notes = append(cmd.Notes, "chronic dropped: tickgate keeps the job's output in the journal and says when it fails")
				return cmd.parse(rest(i), shell, depth+1)
			}
		case "timeout":
			return cmd.timeout(line, words, shell, depth)
		case "nice":
			return cmd.nice(line, words, shell, depth)
		case "ionice":
			return cmd.ionice(line, words, shell, depth)
		case "cd":
			// cd DIR && COMMAND: the job's working directory.
			if len(words) > 3 && plainUpTo(2) && words[2].text == "&" && words[3].text == "&" &&
				words[3].start == words[2].end && path.IsAbs(words[1].text) && cmd.WorkDir == "" {
				cmd.WorkDir = path.Clean(words[1].text)
				if len(words) > 4 {
					return cmd.parse(rest(4), shell, depth+1)
				}
			}
		}
	}
	if needShell {
		if strings.HasSuffix(line, "|| true") || strings.HasSuffix(line, "|| :") {
			cmd.Notes = append(cmd.Notes, "|| hides the command's exit code from tickgate (its ok/done/halt codes, failures): consider dropping it")
		}
		cmd.Argv = []string{shell, "-c", line}
		return nil
	}
	for _, w := range words {
		cmd.Argv = append(cmd.Argv, w.text)
	}
	if cmd.Argv[0] == "" {
		return errors.New("the command is an empty word")
	}
	return nil
}

func isOperator(w word) bool {
	return !w.plain && len(w.text) == 1 && w.end-w.start == 1 && strings.IndexByte(operatorChars, w.text[0]) >= 0
}

// flock [-n|-w SECS|-x|-e|-o|-E N|-F] FILE COMMAND… | FILE -c COMMAND
func (cmd *Command) flock(line string, words []word, shell string, depth int) error {
	wait := "1d" // flock waits without bound; a tick waits at most a day
	i := 1
	for ; i < len(words); i++ {
		w := words[i]
		if !w.plain || isOperator(w) {
			return fmt.Errorf("flock: %q is not a plain word", w.text)
		}
		t := w.text
		if !strings.HasPrefix(t, "-") || t == "-" {
			break
		}
		switch {
		case t == "-n" || t == "--nb" || t == "--nonblock":
			wait = ""
		case t == "-x" || t == "-e" || t == "--exclusive" || t == "-o" || t == "--close" || t == "-F" || t == "--no-fork" || t == "--verbose":
		case t == "-s" || t == "--shared":
			return errors.New("flock -s: a shared lock lets runs overlap; tickgate's lock groups are exclusive")
		case t == "-u" || t == "--unlock":
			return errors.New("flock -u: unlocks a descriptor, nothing a cron line can mean")
		case t == "-w" || t == "--wait" || t == "--timeout" || t == "-E" || t == "--conflict-exit-code":
			if i+1 >= len(words) || !words[i+1].plain {
				return fmt.Errorf("flock %s: no value", t)
			}
			i++
			if t == "-E" || t == "--conflict-exit-code" {
				continue
			}
			d, err := seconds(words[i].text, "")
			if err != nil {
				return fmt.Errorf("flock %s: %v", t, err)
			}
			wait = d
		case strings.HasPrefix(t, "--wait=") || strings.HasPrefix(t, "--timeout="):
			d, err := seconds(t[strings.IndexByte(t, '=')+1:], "")
			if err != nil {
				return fmt.Errorf("flock: %v", err)
			}
			wait = d
		case strings.HasPrefix(t, "-w") && len(t) > 2:
			d, err := seconds(t[2:], "")
			if err != nil {
				return fmt.Errorf("flock: %v", err)
			}
			wait = d
		case strings.HasPrefix(t, "-E") || strings.HasPrefix(t, "--conflict-exit-code="):
		case len(t) > 2 && t[1] != '-' && strings.Trim(t[1:], "xeonF") == "":
			// short flags together: -xn, -en, -nF
			if strings.ContainsRune(t, 'n') {
				wait = ""
			}
		default:
			return fmt.Errorf("flock: option %q is not one tickgate knows", t)
		}
	}
	if i+1 >= len(words) {
		return errors.New("flock: no lock file and command (flock on a descriptor belongs inside a script)")
	}
	file := words[i].text
	if _, err := strconv.Atoi(file); err == nil {
		return errors.New("flock: a descriptor number, not a file: that form belongs inside a script")
	}
	if cmd.Lock != "" {
		return errors.New("flock inside flock: two lock files for one job")
	}
	cmd.Lock, cmd.LockWait = file, wait
	if wait == "1d" {
		cmd.Notes = append(cmd.Notes, "flock waited for the lock without bound; the job waits up to a day (lock_wait)")
	}
	next := words[i+1]
	if next.text == "-c" || next.text == "--command" {
		if i+2 >= len(words) || i+3 != len(words) {
			return errors.New("flock -c: want exactly one command string after it")
		}
		return cmd.parse(words[i+2].text, shell, depth+1)
	}
	return cmd.parse(strings.TrimSpace(line[next.start:]), shell, depth+1)
}

// timeout [--preserve-status] [--foreground] [-k D] [-s SIG] [-v] DURATION COMMAND…
func (cmd *Command) timeout(line string, words []word, shell string, depth int) error {
	i := 1
	for ; i < len(words); i++ {
		w := words[i]
		if !w.plain || isOperator(w) {
			return fmt.Errorf("timeout: %q is not a plain word", w.text)
		}
		t := w.text
		if !strings.HasPrefix(t, "-") {
			break
		}
		switch {
		case t == "--preserve-status" || t == "--foreground" || t == "-v" || t == "--verbose":
		case t == "-k" || t == "--kill-after" || t == "-s" || t == "--signal":
			i++
			if i >= len(words) {
				return fmt.Errorf("timeout %s: no value", t)
			}
			if (t == "-s" || t == "--signal") && !isTerm(words[i].text) {
				return fmt.Errorf("timeout -s %s: tickgate stops a job with SIGTERM, then SIGKILL", words[i].text)
			}
			if t == "-k" || t == "--kill-after" {
				cmd.Notes = append(cmd.Notes, "timeout -k: tickgate SIGKILLs after tickgate_kill_after (host-wide)")
			}
		case strings.HasPrefix(t, "--kill-after="):
			cmd.Notes = append(cmd.Notes, "timeout -k: tickgate SIGKILLs after tickgate_kill_after (host-wide)")
		case strings.HasPrefix(t, "--signal="):
			if !isTerm(strings.TrimPrefix(t, "--signal=")) {
				return fmt.Errorf("timeout %s: tickgate stops a job with SIGTERM, then SIGKILL", t)
			}
		default:
			return fmt.Errorf("timeout: option %q is not one tickgate knows", t)
		}
	}
	if i+1 >= len(words) {
		return errors.New("timeout: no duration and command")
	}
	d, err := seconds(words[i].text, "s")
	if err != nil {
		return fmt.Errorf("timeout: %v", err)
	}
	if d == "" {
		return cmd.parse(strings.TrimSpace(line[words[i+1].start:]), shell, depth+1) // timeout 0: none
	}
	if cmd.Timeout != "" {
		return errors.New("timeout inside timeout")
	}
	cmd.Timeout = d
	return cmd.parse(strings.TrimSpace(line[words[i+1].start:]), shell, depth+1)
}

func isTerm(sig string) bool {
	s := strings.TrimPrefix(strings.ToUpper(sig), "SIG")
	return s == "TERM" || s == "15"
}

// nice [-n N | -N] COMMAND…
func (cmd *Command) nice(line string, words []word, shell string, depth int) error {
	n, i := 10, 1
	if i < len(words) && words[i].plain {
		t := words[i].text
		switch {
		case t == "-n" || t == "--adjustment":
			if i+1 >= len(words) {
				return errors.New("nice -n: no value")
			}
			v, err := strconv.Atoi(words[i+1].text)
			if err != nil {
				return fmt.Errorf("nice -n %q: not a number", words[i+1].text)
			}
			n, i = v, i+2
		case strings.HasPrefix(t, "--adjustment="):
			v, err := strconv.Atoi(strings.TrimPrefix(t, "--adjustment="))
			if err != nil {
				return fmt.Errorf("nice %s: not a number", t)
			}
			n, i = v, i+1
		case len(t) > 1 && t[0] == '-':
			v, err := strconv.Atoi(t[1:])
			if err != nil {
				return fmt.Errorf("nice %s: not an adjustment", t)
			}
			n, i = v, i+1
		}
	}
	if i >= len(words) {
		return errors.New("nice: no command")
	}
	n = max(-20, min(19, n))
	cmd.Nice = &n
	return cmd.parse(strings.TrimSpace(line[words[i].start:]), shell, depth+1)
}

// ionice -c CLASS [-n N] COMMAND…
func (cmd *Command) ionice(line string, words []word, shell string, depth int) error {
	class, i := "", 1
	for ; i < len(words) && words[i].plain && strings.HasPrefix(words[i].text, "-"); i++ {
		t := words[i].text
		v := ""
		switch {
		case t == "-c" || t == "--class" || t == "-n" || t == "--classdata":
			if i+1 >= len(words) {
				return fmt.Errorf("ionice %s: no value", t)
			}
			i++
			v = words[i].text
		case strings.HasPrefix(t, "-c") || strings.HasPrefix(t, "-n"):
			v, t = t[2:], t[:2]
		case t == "-t" || t == "--ignore":
			continue
		default:
			return fmt.Errorf("ionice: option %q is not one tickgate knows", t)
		}
		if t == "-c" || t == "--class" {
			switch v {
			case "1", "realtime":
				class = "realtime"
			case "2", "best-effort":
				class = "best-effort"
			case "3", "idle":
				class = "idle"
			default:
				return fmt.Errorf("ionice -c %s: no such class", v)
			}
		} else {
			cmd.Notes = append(cmd.Notes, "ionice -n: the priority within the class is dropped (IOSchedulingPriority= has no job field)")
		}
	}
	if i >= len(words) {
		return errors.New("ionice: no command")
	}
	cmd.IOClass = class
	return cmd.parse(strings.TrimSpace(line[words[i].start:]), shell, depth+1)
}

// seconds reads a duration as flock (seconds) and timeout (N[smhd]) take
// it, as a tickgate span; "" for zero. unit is the suffix a bare number has
// ("" = flock: seconds, as a float).
func seconds(text, unit string) (string, error) {
	mult := 1.0
	num := text
	if n := len(text); n > 0 && strings.IndexByte("smhd", text[n-1]) >= 0 && unit != "" {
		num = text[:n-1]
		mult = map[byte]float64{'s': 1, 'm': 60, 'h': 3600, 'd': 86400}[text[n-1]]
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return "", fmt.Errorf("%q is not a duration", text)
	}
	s := v * mult
	switch {
	case s == 0:
		return "", nil
	case s < 1:
		return strconv.FormatFloat(s, 'f', -1, 64) + "s", nil
	case s == math.Trunc(s) && int64(s)%86400 == 0:
		return fmt.Sprintf("%dd", int64(s)/86400), nil
	case s == math.Trunc(s) && int64(s)%3600 == 0:
		return fmt.Sprintf("%dh", int64(s)/3600), nil
	case s == math.Trunc(s) && int64(s)%60 == 0:
		return fmt.Sprintf("%dmin", int64(s)/60), nil
	case s == math.Trunc(s):
		return fmt.Sprintf("%ds", int64(s)), nil
	}
	return strconv.FormatFloat(s, 'f', 3, 64) + "s", nil
}

// Percent handles cron's %: an unescaped % ends the command (the rest is
// its stdin, with % as newlines), which a tickgate job has no field for;
// \% is a literal %.
func Percent(command string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(command); i++ {
		c := command[i]
		if c == '\\' && i+1 < len(command) && command[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		if c == '%' {
			return "", errors.New("an unescaped % gives the command stdin under cron (the text after it, % as newlines); put that text in a file and redirect it, or escape the % as \\%")
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}
