// Command tickgate-exec is the last step between tickgate and a non-root
// job's own program: `tickgate-exec __exec -- PROGRAM [ARG...]`, started by
// the supervisor as the job's user, empties its capability sets and execs
// PROGRAM (package execshim). It is installed beside tickgate and is not
// meant to be run by hand. It links nothing else, so that it starts fast:
// every non-root tick pays its start-up.
package main

import (
	"fmt"
	"os"

	"github.com/tickgate/tickgate/helper/execshim"
)

func main() {
	code, err := execshim.Main(os.Args)
	// Not through package voice, whose text escaper links encoding/json:
	// every non-root tick pays this program's start-up. The line goes to
	// the job's own stderr, as the job's user, like the program's output.
	fmt.Fprintf(os.Stderr, "tickgate: %v\n", err)
	os.Exit(code)
}
