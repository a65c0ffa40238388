// Package unitlog reads what one run of a unit wrote, from the journal, by
// the invocation id systemd gives each start of a service: the job's
// output is never routed through tickgate to be kept.
package unitlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"slices"

	"github.com/tickgate/tickgate/helper/sysprog"
)

// Lines returns the last n messages the invocation's processes wrote,
// oldest first, leaving out those of the processes in skip (pids as the
// journal writes them; systemd's own "1" is always left out). The journal
// is read by journalctl at its absolute path (package sysprog).
func Lines(ctx context.Context, invocation string, n int, skip ...string) ([]string, error) {
	cmd, err := sysprog.Command(ctx, "journalctl", "--no-pager", "-o", "json", "-n", "1000", "_SYSTEMD_INVOCATION_ID="+invocation)
	if err != nil {
		return nil, err
	}
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e struct {
			PID string `json:"_PID"`
			Msg any    `json:"MESSAGE"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.PID == "1" || slices.Contains(skip, e.PID) {
			continue
		}
		switch m := e.Msg.(type) {
		case string:
			lines = append(lines, m)
		case []any: // a message that is not UTF-8: journald gives its bytes
			b := make([]byte, 0, len(m))
			for _, v := range m {
				if f, ok := v.(float64); ok {
					b = append(b, byte(f))
				}
			}
			lines = append(lines, string(b))
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, sc.Err()
}
