//go:build chaos

package chaos

import (
	"fmt"
	"os/exec"
)

// The partitioned host's network: a namespace the suite creates, joined to
// the machine's by a veth pair. The main cluster listens on the machine's
// end too; the partition is a DROP rule inside the namespace only.
const (
	netnsName   = "tgchaos"
	netnsSubnet = "10.231.0.0/30"
	netnsOuter  = "10.231.0.1" // the machine's end: where the host reaches the database
	netnsInner  = "10.231.0.2"
)

func ipCmd(args ...string) error { return run(exec.Command("ip", args...)) }

// setUpNetns creates the namespace and its link (removing leftovers of a
// run that was killed: both names are the suite's own).
func setUpNetns() error {
	tearDownNetns()
	for _, args := range [][]string{
		{"netns", "add", netnsName},
		{"link", "add", "tgc0", "type", "veth", "peer", "name", "tgc1"},
		{"link", "set", "tgc1", "netns", netnsName},
		{"addr", "add", netnsOuter + "/30", "dev", "tgc0"},
		{"link", "set", "tgc0", "up"},
		{"-n", netnsName, "addr", "add", netnsInner + "/30", "dev", "tgc1"},
		{"-n", netnsName, "link", "set", "tgc1", "up"},
		{"-n", netnsName, "link", "set", "lo", "up"},
	} {
		if err := ipCmd(args...); err != nil {
			return fmt.Errorf("network namespace: %w", err)
		}
	}
	return nil
}

func tearDownNetns() {
	_ = exec.Command("ip", "link", "del", "tgc0").Run()
	_ = exec.Command("ip", "netns", "del", netnsName).Run()
}

// partition cuts the namespace off the database (both ways, silently: no
// reset reaches either end), or heals it.
func partition(on bool) error {
	op := "-D"
	if on {
		op = "-I"
	}
	for _, rule := range [][]string{
		{"OUTPUT", "-d", netnsOuter, "-j", "DROP"},
		{"INPUT", "-s", netnsOuter, "-j", "DROP"},
	} {
		args := append([]string{"netns", "exec", netnsName, "iptables", op}, rule...)
		if err := run(exec.Command("ip", args...)); err != nil {
			return fmt.Errorf("partition: %w", err)
		}
	}
	return nil
}

// inNetns is the argv prefix that runs a program in the namespace (nsenter
// execs it: the program stays the unit's main process).
func inNetns() []string { return []string{"nsenter", "--net=/run/netns/" + netnsName, "--"} }
