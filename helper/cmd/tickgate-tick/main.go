// Command tickgate-tick is the ExecStart of jobs that use neither fleet
// coordination nor notifications: `tickgate-tick run JOB -- COMMAND`, the
// same run as tickgate's, with nothing else wired. It links no PostgreSQL
// driver, HTTP client or D-Bus library, whose package initialisation every
// tick would pay (docs/design/tick-floor.md). A tick that needs the fleet or
// a notification is handed to the tickgate beside it before anything is
// locked, read or written (cli.HandOffToFull).
package main

import (
	"os"

	"github.com/tickgate/tickgate/helper/cli"
)

func main() {
	os.Exit(cli.Main(cli.Wiring{HandOff: cli.HandOffToFull}))
}
