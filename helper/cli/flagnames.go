package cli

import (
	"flag"
	"os"
	"strconv"
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
		def   string // Value as declared (Apply sets it from the environment)
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

// Apply is ucli.StringFlag's (v2.27) but for the names, which it computes
// through FlagNames' regexp on every run: a string flag is most of a
// tick's, and this keeps regexp matching out of a tick altogether.
func (f stringFlag) Apply(set *flag.FlagSet) error {
	if f.FilePath != "" {
		return f.StringFlag.Apply(set)
	}
	for _, env := range f.EnvVars {
		if val, found := os.LookupEnv(strings.TrimSpace(env)); found {
			f.Value, f.HasBeenSet = val, true
			break
		}
	}
	for _, name := range f.names {
		if f.Destination != nil {
			set.StringVar(f.Destination, name, f.Value, f.Usage)
			continue
		}
		set.String(name, f.Value, f.Usage)
	}
	return nil
}

// GetDefaultText is ucli.StringFlag's: the default as declared, not as the
// environment set it.
func (f stringFlag) GetDefaultText() string {
	if f.DefaultText != "" || f.def == "" {
		return f.DefaultText
	}
	return strconv.Quote(f.def)
}

// String is the flag in help texts, with this GetDefaultText.
func (f stringFlag) String() string { return ucli.FlagStringer(f) }

// cachedNames wraps each flag of the kinds tickgate uses; others stay as
// they are.
func cachedNames(flags []ucli.Flag) []ucli.Flag {
	out := make([]ucli.Flag, len(flags))
	for i, f := range flags {
		switch t := f.(type) {
		case *ucli.StringFlag:
			out[i] = stringFlag{t, flagNames(t.Name, t.Aliases), t.Value}
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
