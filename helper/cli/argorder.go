package cli

import (
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// interspersed moves flags that follow positional arguments in front of
// them, so that `tickgate halt backfill --reason x` and `tickgate status
// harvest --json` work as in systemctl, git or kubectl. urfave/cli v2 stops
// parsing flags at the first positional argument. A command's flags go after
// the command (and subcommand) name, global flags before it; everything from
// a "--" on (run's COMMAND) is left exactly as it is. An unknown flag stays
// with the command, which reports it.
func interspersed(app *ucli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	global := flagTable(app.Flags)
	var head, globals []string
	rest := args[1:]
	// Global flags before the command.
	for len(rest) > 0 && isFlag(rest[0]) {
		n := 1
		if takesValue(global, rest[0]) && len(rest) > 1 {
			n = 2
		}
		globals = append(globals, rest[:n]...)
		rest = rest[n:]
	}
	if len(rest) == 0 {
		return args
	}
	cmd := FindCommand(app.Commands, rest[0])
	if cmd == nil {
		return args
	}
	head = append(head, rest[0])
	rest = rest[1:]
	for len(cmd.Subcommands) > 0 {
		// Flags may come before the subcommand name too.
		i := 0
		for i < len(rest) && isFlag(rest[i]) {
			i++
		}
		if i == len(rest) {
			break
		}
		sub := FindCommand(cmd.Subcommands, rest[i])
		if sub == nil {
			break
		}
		moved := append([]string{}, rest[:i]...)
		head = append(head, rest[i])
		rest = append(moved, rest[i+1:]...)
		cmd = sub
	}
	own := flagTable(cmd.Flags)
	var flags, positional, tail []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			tail = rest[i:]
			break
		}
		if !isFlag(a) {
			positional = append(positional, a)
			continue
		}
		name := flagName(a)
		_, isOwn := own.lookup(name)
		_, isGlobal := global.lookup(name)
		dst := &flags
		if isGlobal && !isOwn {
			dst = &globals
		}
		*dst = append(*dst, a)
		table := own
		if dst == &globals {
			table = global
		}
		if takesValue(table, a) && i+1 < len(rest) {
			i++
			*dst = append(*dst, rest[i])
		}
	}
	out := append([]string{args[0]}, globals...)
	out = append(out, head...)
	out = append(out, flags...)
	out = append(out, positional...)
	return append(out, tail...)
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" }

func flagName(a string) string {
	name := strings.TrimLeft(a, "-")
	name, _, _ = strings.Cut(name, "=")
	return name
}

// flagTable is every flag of a command, to look a name up in. A few dozen
// flags and a command line's handful of them: a scan, not a map (building
// the maps, and the interface conversion TakesValue took, were ~1% of a
// tick in perf, most of it first-touch page faults).
type flagTable []ucli.Flag

// lookup reports whether name is one of the flags (or help) and whether it
// takes a value.
func (t flagTable) lookup(name string) (takes, found bool) {
	if name == "help" || name == "h" {
		return false, true
	}
	for _, f := range t {
		for _, n := range f.Names() {
			if n == name {
				return takesValueFlag(f), true
			}
		}
	}
	return false, false
}

// takesValueFlag is false for a bool flag, wrapped (cachedNames) or not.
func takesValueFlag(f ucli.Flag) bool {
	switch t := f.(type) {
	case boolFlag, *ucli.BoolFlag:
		return false
	case stringFlag, intFlag, float64Flag, stringSliceFlag:
		return true
	case interface{ TakesValue() bool }:
		return t.TakesValue()
	}
	return true
}

// takesValue reports whether a (a flag without "=VALUE") consumes the next
// argument.
func takesValue(table flagTable, a string) bool {
	takes, _ := table.lookup(flagName(a))
	return !strings.Contains(a, "=") && takes
}

// FindCommand is the command of cmds named name (or an alias), nil if none.
func FindCommand(cmds []*ucli.Command, name string) *ucli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// FlagTakesValue reports whether name is one of flags (or help) and
// whether it takes a value: what the shells' completion needs to skip a
// flag's value.
func FlagTakesValue(flags []ucli.Flag, name string) (takes, found bool) {
	return flagTable(flags).lookup(name)
}
