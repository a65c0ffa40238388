package commands

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/safefs"
	"github.com/tickgate/tickgate/helper/state"
)

// completeCommand is what the shell completions (packaging/completion) ask:
// given the words after "tickgate" up to the one being completed (the last,
// possibly empty), it prints the candidates one per line: commands,
// subcommands, flags, and the jobs of --state-dir where the command takes a
// JOB. Hidden: not a command an operator types.
func completeCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name:            "__complete",
		Hidden:          true,
		Usage:           "print completion candidates for the words given (the shell completions ask it)",
		UsageText:       "tickgate __complete -- WORD... CURRENT",
		SkipFlagParsing: true,
		Action: func(c *ucli.Context) error {
			words := c.Args().Slice()
			if len(words) > 0 && words[0] == "--" {
				words = words[1:]
			}
			// Where the jobs are, as any command reads it: a global flag
			// given before __complete, else its environment variable,
			// else its default; the words being completed may name others.
			where := map[string]string{"state-dir": c.String("state-dir"), "supervisor": c.String("supervisor")}
			for _, w := range completions(c.App, words, where) {
				fmt.Fprintln(e.Stdout, w)
			}
			return nil
		},
	}
}

// completions are the candidates for the last of words, given those before.
// globalsSeen holds the global flags that say where the jobs are
// (state-dir, supervisor); those the words give replace them.
func completions(app *ucli.App, words []string, globalsSeen map[string]string) []string {
	cur := ""
	if len(words) > 0 {
		cur, words = words[len(words)-1], words[:len(words)-1]
	}
	flags := app.Flags
	var cmd *ucli.Command
	subs := app.VisibleCommands()
	for i := 0; i < len(words); i++ {
		w := words[i]
		if w == "--" {
			// run JOB -- COMMAND...: the shell's own completion.
			return nil
		}
		if strings.HasPrefix(w, "-") {
			name, _, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
			_, global := globalsSeen[name]
			if takes, _ := cli.FlagTakesValue(flags, name); takes && !hasValue && i+1 < len(words) {
				if global {
					globalsSeen[name] = words[i+1]
				}
				i++
			} else if global && hasValue {
				_, globalsSeen[name], _ = strings.Cut(w, "=")
			}
			continue
		}
		if next := cli.FindCommand(subs, w); next != nil {
			cmd, flags, subs = next, next.Flags, next.VisibleCommands()
			continue
		}
		if len(subs) > 0 {
			return nil // not a command this one has
		}
	}
	if len(words) > 0 {
		if prev := words[len(words)-1]; strings.HasPrefix(prev, "-") && !strings.Contains(prev, "=") {
			if takes, _ := cli.FlagTakesValue(flags, strings.TrimLeft(prev, "-")); takes {
				return nil // the flag's value: anything
			}
		}
	}
	var out []string
	add := func(s string) {
		if strings.HasPrefix(s, cur) {
			out = append(out, s)
		}
	}
	switch {
	case strings.HasPrefix(cur, "-"):
		for _, f := range flags {
			for _, n := range f.Names() {
				if len(n) == 1 {
					add("-" + n)
				} else {
					add("--" + n)
				}
			}
		}
	case len(subs) > 0:
		for _, s := range subs {
			add(s.Name)
		}
	case cmd != nil && strings.Contains(cmd.UsageText, "JOB"):
		jobs, _ := state.Store{Dir: globalsSeen["state-dir"], Owners: safefs.NewOwners(globalsSeen["supervisor"])}.Jobs()
		for _, j := range jobs {
			add(j)
		}
	}
	return out
}
