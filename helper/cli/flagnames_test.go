package cli_test

import (
	"flag"
	"slices"
	"testing"

	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/commands"
	ucli "github.com/urfave/cli/v2"
)

// flagNames must answer what urfave/cli's FlagNames does, for every flag
// tickgate defines and for the v1 forms its regexp exists for.
func TestFlagNamesAsUrfave(t *testing.T) {
	cases := [][]string{
		{"state-dir"}, {"json", "j"}, {"lock-wait", "w", "wait"}, {""},
		{"v1, alias"}, {"name", "bad alias"}, {"x,y"}, {" lead"},
	}
	app := cli.NewApp(cli.Wiring{Commands: commands.All})
	var walk func(fs []ucli.Flag, cs []*ucli.Command)
	walk = func(fs []ucli.Flag, cs []*ucli.Command) {
		for _, f := range fs {
			cases = append(cases, f.Names()) // already cached: name + aliases
		}
		for _, c := range cs {
			walk(c.Flags, c.Subcommands)
		}
	}
	walk(app.Flags, app.Commands)
	if len(cases) < 50 {
		t.Fatalf("only %d cases: the app's flags were not found", len(cases))
	}
	for _, c := range cases {
		got, want := cli.FlagNames(c[0], c[1:]), ucli.FlagNames(c[0], c[1:])
		if !slices.Equal(got, want) {
			t.Errorf("flagNames(%q, %q) = %q, urfave/cli says %q", c[0], c[1:], got, want)
		}
	}
}

// stringFlag's Apply and help line must be urfave/cli's StringFlag's, set
// from the environment or not: the flag set it fills (names, values,
// defaults, usage), what the flag says after, and its help line, which
// shows the default as declared, not the environment's value.
func TestStringFlagAsUrfave(t *testing.T) {
	t.Setenv("TICKGATE_LOCK_DIR", "/from/env")
	t.Setenv("TICKGATE_METRICS_DIR", "/m")
	t.Setenv("TICKGATE_FLEET_HOST", "")
	ours, theirs := cli.NewApp(cli.Wiring{Commands: commands.All}), cli.NewApp(cli.Wiring{Commands: commands.All})
	n, fromEnv := 0, 0
	var walk func(a, b []ucli.Flag, ac, bc []*ucli.Command)
	walk = func(a, b []ucli.Flag, ac, bc []*ucli.Command) {
		for i, f := range a {
			if _, ok := f.(cli.StringFlag); !ok {
				continue
			}
			w := f.(cli.StringFlag)
			raw, _ := cli.RawStringFlag(b[i])
			sa, sb := flag.NewFlagSet("ours", flag.ContinueOnError), flag.NewFlagSet("urfave", flag.ContinueOnError)
			if err := w.Apply(sa); err != nil {
				t.Fatal(err)
			}
			if err := raw.Apply(sb); err != nil {
				t.Fatal(err)
			}
			sb.VisitAll(func(fb *flag.Flag) {
				fa := sa.Lookup(fb.Name)
				if fa == nil || fa.DefValue != fb.DefValue || fa.Usage != fb.Usage || fa.Value.String() != fb.Value.String() {
					t.Errorf("--%s: ours %+v, urfave/cli's %+v", fb.Name, fa, fb)
				}
			})
			if w.Value != raw.Value || w.HasBeenSet != raw.HasBeenSet {
				t.Errorf("--%s: ours %q (set %v), urfave/cli's %q (set %v)", w.Name, w.Value, w.HasBeenSet, raw.Value, raw.HasBeenSet)
			}
			if w.String() != raw.String() {
				t.Errorf("--%s help: ours %q, urfave/cli's %q", w.Name, w.String(), raw.String())
			}
			if raw.HasBeenSet {
				fromEnv++
			}
			n++
		}
		for i := range ac {
			walk(ac[i].Flags, bc[i].Flags, ac[i].Subcommands, bc[i].Subcommands)
		}
	}
	walk(ours.Flags, theirs.Flags, ours.Commands, theirs.Commands)
	if n < 30 || fromEnv != 3 {
		t.Fatalf("%d string flags, %d set from the environment: the app's flags were not found", n, fromEnv)
	}
}
