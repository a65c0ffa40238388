package status

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// jobsNull is the line the report's jobs take when they are left out of
// its encoding: the key is top-level, and no JSON string holds a raw
// newline, so it cannot occur anywhere else.
var jobsNull = []byte("\n  \"jobs\": null,\n")

// WriteJSON prints the report as `status --json` does: the bytes of a
// json.Encoder indenting by two spaces. The job rows (nearly all of the
// output: at 1000 jobs with 10 runs each, ~4 MB of which encoding took more
// time than reading the state files) are encoded side by side.
func (r *Report) WriteJSON(w io.Writer) error {
	head := *r
	head.Jobs = nil
	out, err := json.MarshalIndent(&head, "", "  ")
	if err != nil {
		return err
	}
	i := bytes.Index(out, jobsNull)
	if i < 0 {
		return fmt.Errorf("status: encoding the report: no jobs key")
	}
	rows, err := encodeRows(r.Jobs)
	if err != nil {
		return err
	}
	size := len(out) + 8
	for _, row := range rows {
		size += len(row) + 6
	}
	var b bytes.Buffer
	b.Grow(size)
	b.Write(out[:i])
	if r.Jobs == nil {
		b.WriteString("\n  \"jobs\": null,\n")
	} else if len(rows) == 0 {
		b.WriteString("\n  \"jobs\": [],\n")
	} else {
		b.WriteString("\n  \"jobs\": [\n    ")
		for k, row := range rows {
			if k > 0 {
				b.WriteString(",\n    ")
			}
			b.Write(row)
		}
		b.WriteString("\n  ],\n")
	}
	b.Write(out[i+len(jobsNull):])
	b.WriteByte('\n')
	_, err = w.Write(b.Bytes())
	return err
}

// encodeRows encodes each row as it appears inside the report (indented
// two levels), one worker per CPU.
func encodeRows(jobs []Job) ([][]byte, error) {
	out := make([][]byte, len(jobs))
	errs := make([]error, len(jobs))
	eachParallel(len(jobs), func(k int) { out[k], errs[k] = encodeRow(&jobs[k]) })
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// historyNull is the line a row's history takes when it is left out of the
// row's encoding (a key of the row itself: nested objects' keys are
// indented further).
var historyNull = []byte("\n      \"history\": null,\n")

// encodeRow is json.MarshalIndent(j, "    ", "  ") but for the history: its
// runs, stored as json.MarshalIndent wrote them into state.json two levels
// up, are checked and moved two levels down rather than compacted and
// indented again (at 10 runs per job they are most of the bytes). A run
// laid out otherwise keeps its own whitespace, one level deeper.
func encodeRow(j *Job) ([]byte, error) {
	hist := j.History
	row := *j
	row.History = nil
	b, err := json.MarshalIndent(&row, "    ", "  ")
	if err != nil || hist == nil {
		return b, err
	}
	i := bytes.Index(b, historyNull)
	if i < 0 {
		return nil, fmt.Errorf("status: encoding job %s: no history key", j.Job)
	}
	size := len(b) + 32
	for _, run := range hist {
		if !json.Valid(run) {
			return nil, fmt.Errorf("status: job %s: a history entry is not JSON", j.Job)
		}
		size += len(run) + bytes.Count(run, []byte("\n"))*4 + 16
	}
	out := make([]byte, 0, size)
	out = append(out, b[:i]...)
	out = append(out, "\n      \"history\": ["...)
	for k, run := range hist {
		if k > 0 {
			out = append(out, ',')
		}
		out = append(out, "\n        "...)
		for {
			n := bytes.IndexByte(run, '\n')
			if n < 0 {
				break
			}
			out = append(out, run[:n+1]...)
			out = append(out, "    "...)
			run = run[n+1:]
		}
		out = append(out, run...)
	}
	if len(hist) > 0 {
		out = append(out, "\n      "...)
	}
	out = append(out, "],\n"...)
	return append(out, b[i+len(historyNull):]...), nil
}
