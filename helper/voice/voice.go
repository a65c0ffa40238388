// Package voice is how tickgate speaks on stderr: every error, warning and
// hint it prints goes through here, so that they read as one program
// (after age's cmd/age/tui.go).
//
// The rules, for every message tickgate writes (voice_test.go checks the
// ones a machine can check, in every message of the helper's sources):
//
//  1. One line each. The printer adds "tickgate: " (errors) or
//     "tickgate: warning: " (warnings) and the newline; a message carries
//     neither, nor "error:".
//  2. Lower case first (but for a name that is spelled with a capital:
//     PostgreSQL, D-Bus), and no final period. Clauses are joined with
//     "; " or ": ".
//  3. Say what it is about first, then what is wrong, then (after "; ")
//     what to do:
//     a job is "job NAME: …" (never job=NAME, which is only the tick's
//     key=value line); a flag is "--flag: …"; a role variable or job field
//     by its name ("lock_wait: …"); a file by its absolute path.
//  4. A hint names the exact command to run, in backquotes:
//     "…; `tickgate clear backfill` re-arms it".
//  5. Text tickgate did not write (a reason, a job's output, a file's
//     content, a fleet record) is printed through textsafe: the printers
//     here clean every message whole.
//  6. A reason recorded for a tick starts with its kebab-case prefix from
//     package reason ("missed-deadline: due …").
package voice

import (
	"fmt"
	"io"
	"strings"

	"github.com/tickgate/tickgate/helper/textsafe"
)

// Prog is what every line tickgate prints to stderr starts with.
const Prog = "tickgate"

// Error is err as tickgate prints it: "tickgate: MESSAGE", one line.
func Error(err error) string {
	return Prog + ": " + textsafe.Clean(strings.TrimSpace(err.Error()))
}

// Warning is a warning as tickgate prints it: "tickgate: warning: MESSAGE".
func Warning(format string, a ...any) string {
	return Prog + ": warning: " + textsafe.Clean(strings.TrimSpace(fmt.Sprintf(format, a...)))
}

// Warn prints a warning line to w.
func Warn(w io.Writer, format string, a ...any) {
	fmt.Fprintln(w, Warning(format, a...))
}

// Say prints an informational line to w: "tickgate: MESSAGE" (a summary on
// stderr beside a command's output on stdout).
func Say(w io.Writer, format string, a ...any) {
	fmt.Fprintln(w, Prog+": "+textsafe.Clean(strings.TrimSpace(fmt.Sprintf(format, a...))))
}

// PrintError prints err's line to w.
func PrintError(w io.Writer, err error) {
	fmt.Fprintln(w, Error(err))
}
