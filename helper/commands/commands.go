// Package commands is tickgate's operator commands, one file each (start, drain,
// status, clear, halt, gate, backoff, catch-up, history, fence, fleet and
// the shells' __complete), on package cli's command line. The full helper's
// main wires them in (cli.Wiring.Commands); tickgate-tick has none of them,
// nor the libraries they link (D-Bus, PostgreSQL, HTTP).
package commands

import (
	"github.com/tickgate/tickgate/helper/cli"
	ucli "github.com/urfave/cli/v2"
)

// All is every operator command, in the order tickgate --help lists them.
func All(e *cli.Env) []*ucli.Command {
	return []*ucli.Command{startCommand(e), gateCommand(e), drainCommand(e), statusCommand(e), clearCommand(e), haltCommand(e), fleetCommand(e), catchUpCommand(e), backoffCommand(e), historyCommand(e), fenceCommand(e), cronCommand(e), completeCommand(e)}
}
