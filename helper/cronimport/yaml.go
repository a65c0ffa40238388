package cronimport

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/tickgate/tickgate/helper/textsafe"
)

// quote writes s as a YAML double-quoted scalar (JSON's escapes are YAML's).
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// comment writes text as YAML comment lines at indent, one per line of it
// (nothing in it can end the comment: a newline starts the next one), each
// escaped as tickgate prints text it did not write (textsafe): a crontab's
// control characters show as \x1b, never act on a terminal.
func comment(w io.Writer, indent, text string) {
	for _, l := range strings.Split(text, "\n") {
		fmt.Fprintf(w, "%s# %s\n", indent, textsafe.Clean(l))
	}
}

// WriteYAML writes the jobs as a tickgate_jobs list that preflight
// accepts, each under a comment naming the line it came from.
func (r *Result) WriteYAML(w io.Writer) {
	comment(w, "", fmt.Sprintf("tickgate cron import: converted %d of %d entries from %s", len(r.Jobs), r.Entries, strings.Join(r.Sources, ", ")))
	comment(w, "", "Under tickgate a job runs sandboxed (ProtectSystem=strict, PrivateTmp): add the paths a job\n"+
		"writes outside its data dir to its read_write_paths (docs/migrating-from-cron.md).")
	for _, p := range r.Problems {
		comment(w, "", "not converted: "+p.String())
	}
	if len(r.Jobs) == 0 {
		fmt.Fprintln(w, "tickgate_jobs: []")
		return
	}
	fmt.Fprintln(w, "tickgate_jobs:")
	for _, j := range r.Jobs {
		comment(w, "  ", j.Source)
		for _, n := range j.Notes {
			comment(w, "  ", n)
		}
		fmt.Fprintf(w, "  - name: %s\n", quote(j.Name))
		fmt.Fprintf(w, "    command: %s\n", list(j.Command))
		if len(j.Schedule) == 1 {
			fmt.Fprintf(w, "    schedule: %s\n", quote(j.Schedule[0]))
		} else {
			fmt.Fprintf(w, "    schedule: %s\n", list(j.Schedule))
		}
		if j.User != "" {
			fmt.Fprintf(w, "    user: %s\n", quote(j.User))
		}
		if j.WorkDir != "" {
			fmt.Fprintf(w, "    working_directory: %s\n", quote(j.WorkDir))
		}
		if len(j.Environment) > 0 {
			fmt.Fprintln(w, "    environment:")
			keys := make([]string, 0, len(j.Environment))
			for k := range j.Environment {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "      %s: %s\n", k, quote(j.Environment[k]))
			}
		}
		if j.Lock != "" {
			fmt.Fprintf(w, "    lock: %s\n", quote(j.Lock))
		}
		if j.LockWait != "" {
			fmt.Fprintf(w, "    lock_wait: %s\n", quote(j.LockWait))
		}
		if j.Timeout != "" {
			fmt.Fprintf(w, "    timeout: %s\n", quote(j.Timeout))
		}
		if j.Nice != nil {
			fmt.Fprintf(w, "    nice: %d\n", *j.Nice)
		}
		if j.IOClass != "" {
			fmt.Fprintf(w, "    io_class: %s\n", quote(j.IOClass))
		}
		if j.Persistent {
			fmt.Fprintln(w, "    persistent: true")
		}
		if j.Delay != "" {
			fmt.Fprintf(w, "    randomized_delay: %s\n", quote(j.Delay))
		}
		if j.ReplacesFile != "" {
			fmt.Fprintf(w, "    replaces_cron: {file: %s, match: %s}\n", quote(j.ReplacesFile), quote(j.ReplacesMatch))
		}
		// Cron starts a job in its minute's first second; AccuracySec=1s
		// keeps the timer there (the default lets it slip up to a minute).
		fmt.Fprintln(w, "    accuracy: \"1s\"")
	}
}

func list(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
