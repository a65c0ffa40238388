package cli

import ucli "github.com/urfave/cli/v2"

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
			out[i] = stringFlag{t, t.Names()}
		case *ucli.BoolFlag:
			out[i] = boolFlag{t, t.Names()}
		case *ucli.IntFlag:
			out[i] = intFlag{t, t.Names()}
		case *ucli.Float64Flag:
			out[i] = float64Flag{t, t.Names()}
		case *ucli.StringSliceFlag:
			out[i] = stringSliceFlag{t, t.Names()}
		default:
			out[i] = f
		}
	}
	return out
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
