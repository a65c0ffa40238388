// Command tickgate is the helper behind every tickgate-JOB.service that
// uses fleet coordination or notifications, and the operator's tool: gate,
// drain, status, clear, halt and the rest (docs/operating.md). Its main
// wires what tickgate-tick leaves out: the operator commands, the fleet
// database and the notifier.
package main

import (
	"os"

	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/commands"
	"github.com/tickgate/tickgate/helper/fleettick"
	"github.com/tickgate/tickgate/helper/notify/send"
	"github.com/tickgate/tickgate/helper/runner"
)

func main() {
	os.Exit(cli.Main(cli.Wiring{
		Commands: commands.All,
		Runner:   runner.Deps{Fleet: fleettick.Dial, Notify: send.Default},
	}))
}
