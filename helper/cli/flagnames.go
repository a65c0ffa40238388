package cli

import (
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// urfave/cli answers IsSet for a flag that is not set by walking every flag
// and recomputing its names through a regexp (FlagNames), and it asks IsSet
// of every flag on each run (runFlagActions): quadratic in the flags, about
// 1300 regexp replacements per `tickgate run`, ~0.25 ms of every tick
// (perf). These wrappers answer Names from a slice computed once; all else
// is the wrapped flag's.
type (
	stringFlag struct {
		*ucli.StringFlag
		names []string
	}
	boolFlag struct {
		*ucli.BoolFlag
		names []string
	}
	intFlag struct {
		*ucli.IntFlag
		names []string
	}
	float64Flag struct {
		*ucli.Float64Flag
		names []string
	}
	stringSliceFlag struct {
		*ucli.StringSliceFlag
		names []string
	}
)

func (f stringFlag) Names() []string      { return f.names }
func (f boolFlag) Names() []string        { return f.names }
func (f intFlag) Names() []string         { return f.names }
func (f float64Flag) Names() []string     { return f.names }
func (f stringSliceFlag) Names() []string { return f.names }

// cachedNames wraps each flag of the kinds tickgate uses; others stay as
// they are.
func cachedNames(flags []ucli.Flag) []ucli.Flag {
	out := make([]ucli.Flag, len(flags))
	for i, f := range flags {
		switch t := f.(type) {
		case *ucli.StringFlag:
			out[i] = stringFlag{t, flagNames(t.Name, t.Aliases)}
		case *ucli.BoolFlag:
			out[i] = boolFlag{t, flagNames(t.Name, t.Aliases)}
		case *ucli.IntFlag:
			out[i] = intFlag{t, flagNames(t.Name, t.Aliases)}
		case *ucli.Float64Flag:
			out[i] = float64Flag{t, flagNames(t.Name, t.Aliases)}
		case *ucli.StringSliceFlag:
			out[i] = stringSliceFlag{t, flagNames(t.Name, t.Aliases)}
		default:
			out[i] = f
		}
	}
	return out
}

// flagNames is ucli.FlagNames without its regexp where it would change
// nothing: that strips a name from its first comma or space on (urfave/cli
// v1's "name, alias" form), and tickgate's names have neither. Computing
// every command's flag names through it was ~1% of a tick (perf).
func flagNames(name string, aliases []string) []string {
	names := append([]string{name}, aliases...)
	for _, n := range names {
		if strings.ContainsAny(n, ", ") {
			return ucli.FlagNames(name, aliases)
		}
	}
	return names
}

// cacheAllNames applies cachedNames to the app's flags and every command's.
func cacheAllNames(app *ucli.App) {
	app.Flags = cachedNames(app.Flags)
	var walk func(cs []*ucli.Command)
	walk = func(cs []*ucli.Command) {
		for _, c := range cs {
			c.Flags = cachedNames(c.Flags)
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
}
