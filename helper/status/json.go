package status

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/tickgate/tickgate/helper/textsafe"
)

// WriteJSON prints the report as `status --json` does: the bytes of a
// json.Encoder indenting by two spaces. The job rows (nearly all of the
// output: at 1000 jobs with 10 runs each, ~4 MB of which encoding took more
// time than reading the state files) are encoded side by side.
//
// The runes encoding/json leaves raw that a terminal would obey (DEL, C1,
// bidi controls) are escaped (textsafe.EscapeJSON): the same JSON value.
func (r *Report) WriteJSON(w io.Writer) error {
	head := *r
	head.Jobs = nil
	out, err := json.MarshalIndent(&head, "", "  ")
	if err != nil {
		return err
	}
	rows, err := encodeRows(r.Jobs)
	if err != nil {
		return err
	}
	if r.Jobs == nil {
		rows = nil // printed as null, as the encoder does
	}
	out, err = spliceArray(textsafe.EscapeJSON(out), "jobs", "  ", rows, "")
	if err != nil {
		return fmt.Errorf("status: encoding the report: %w", err)
	}
	_, err = w.Write(append(out, '\n'))
	return err
}

// Printable escapes, in place, every text of the report (reasons, markers,
// errors, the gate, back-offs, the runs) as the tables print it
// (textsafe.Clean), for a consumer that prints the values as they are: the
// Ansible fact, and playbooks/status.yml after it.
func (r *Report) Printable() { textsafe.Strings(r) }

// spliceArray puts items, as an indented JSON array, where enc (indented
// by two spaces) has the line `<indent>"key": null,` — the key left out of
// the encoding, so nil. Each item's lines are shifted right by shift; nil
// items print null, empty ones []. The line is found by its indentation:
// no JSON string holds a raw newline, and nested keys are indented further.
func spliceArray(enc []byte, key, indent string, items [][]byte, shift string) ([]byte, error) {
	null := []byte("\n" + indent + `"` + key + `": null,` + "\n")
	i := bytes.Index(enc, null)
	if i < 0 {
		return nil, fmt.Errorf("no %q key", key)
	}
	size := len(enc) + len(indent) + 16
	for _, it := range items {
		size += len(it) + len(indent) + 4 + bytes.Count(it, []byte("\n"))*len(shift)
	}
	out := make([]byte, 0, size)
	out = append(out, enc[:i]...)
	out = append(out, "\n"+indent+`"`+key+`": `...)
	switch {
	case items == nil:
		out = append(out, "null"...)
	case len(items) == 0:
		out = append(out, "[]"...)
	default:
		out = append(out, '[')
		for k, it := range items {
			if k > 0 {
				out = append(out, ',')
			}
			out = append(out, "\n"+indent+"  "...)
			if shift == "" {
				out = append(out, it...)
				continue
			}
			for {
				n := bytes.IndexByte(it, '\n')
				if n < 0 {
					break
				}
				out = append(out, it[:n+1]...)
				out = append(out, shift...)
				it = it[n+1:]
			}
			out = append(out, it...)
		}
		out = append(out, "\n"+indent+"]"...)
	}
	out = append(out, ",\n"...)
	return append(out, enc[i+len(null):]...), nil
}

// encodeRows encodes each row as it appears inside the report (indented
// two levels), one worker per CPU.
func encodeRows(jobs []Job) ([][]byte, error) {
	out := make([][]byte, len(jobs))
	errs := make([]error, len(jobs))
	eachParallel(len(jobs), func(k int) {
		if out[k], errs[k] = encodeRow(&jobs[k]); errs[k] == nil {
			out[k] = textsafe.EscapeJSON(out[k])
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// encodeRow is json.MarshalIndent(j, "    ", "  ") but for the history: its
// runs, stored as json.MarshalIndent wrote them into state.json two levels
// up, are checked and moved two levels down rather than compacted and
// indented again (at 10 runs per job they are most of the bytes). A run
// laid out otherwise keeps its own whitespace, one level deeper.
func encodeRow(j *Job) ([]byte, error) {
	row := *j
	row.History = nil
	b, err := json.MarshalIndent(&row, "    ", "  ")
	if err != nil || j.History == nil {
		return b, err
	}
	runs := make([][]byte, len(j.History))
	for k, run := range j.History {
		if !j.historyJSON && !json.Valid(run) {
			return nil, fmt.Errorf("status: job %s: a history entry is not JSON", j.Job)
		}
		runs[k] = run
	}
	out, err := spliceArray(b, "history", "      ", runs, "    ")
	if err != nil {
		return nil, fmt.Errorf("status: encoding job %s: %w", j.Job, err)
	}
	return out, nil
}
