package status

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sync"
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
	workers := min(runtime.GOMAXPROCS(0), len(jobs))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				out[k], errs[k] = json.MarshalIndent(&jobs[k], "    ", "  ")
			}
		}()
	}
	for k := range jobs {
		next <- k
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
