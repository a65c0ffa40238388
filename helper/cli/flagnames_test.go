package cli

import (
	"slices"
	"testing"

	ucli "github.com/urfave/cli/v2"
)

// flagNames must answer what urfave/cli's FlagNames does, for every flag
// tickgate defines and for the v1 forms its regexp exists for.
func TestFlagNamesAsUrfave(t *testing.T) {
	cases := [][]string{
		{"state-dir"}, {"json", "j"}, {"lock-wait", "w", "wait"}, {""},
		{"v1, alias"}, {"name", "bad alias"}, {"x,y"}, {" lead"},
	}
	app := newApp(nil, nil, nil, nil)
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
		got, want := flagNames(c[0], c[1:]), ucli.FlagNames(c[0], c[1:])
		if !slices.Equal(got, want) {
			t.Errorf("flagNames(%q, %q) = %q, urfave/cli says %q", c[0], c[1:], got, want)
		}
	}
}
