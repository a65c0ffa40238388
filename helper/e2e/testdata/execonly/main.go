// Command execonly is a benchmark reference (BenchmarkRunVsFlock): a Go
// program that only runs its arguments as a command and exits with its
// code. Its time against flock(1)'s is the Go runtime's share of a tick.
package main

import (
	"os"
	"os/exec"
)

func main() {
	c := exec.Command(os.Args[1], os.Args[2:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := c.Run(); err != nil {
		os.Exit(1)
	}
}
