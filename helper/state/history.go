package state

import (
	"bytes"
	"encoding/json"
)

// The run history is most of state.json (50 runs are ~13 KB of its ~14 KB),
// and most readers do not need it: a tick only appends one run, status shows
// the last few, drain none. So Parse leaves the runs undecoded when the file
// has the layout tickgate writes (the history is the last key, one run per
// entry at a fixed indentation: JSON strings hold no raw newline, so these
// markers cannot occur inside a value), and the write splices them back.
// Any other layout is decoded whole, as before. A run is checked when it is
// decoded, and the whole file when it is written: split and joined, the
// runs' bytes come back unchanged, so a file edited by hand into something
// that only looks like this layout is never damaged (at worst its runs are
// counted differently, and one that does not decode reads as unknown).
var (
	historyKey   = []byte(",\n  \"history\": [\n    {")
	historyEnd   = []byte("\n    }\n  ]\n}")
	historySplit = []byte("\n    },\n    {")
)

// splitHistory returns state.json without its history (a complete JSON
// object) and the history's runs as raw JSON objects, oldest first; ok is
// false when data is not laid out as tickgate writes it. The runs are
// slices of data (each from its "{" to its "}"), not copies: a 50-run file
// is split without 50 allocations.
func splitHistory(data []byte) (head []byte, runs [][]byte, ok bool) {
	body := bytes.TrimRight(data, "\n")
	// The first match is the only possible one: the key is top-level.
	i := bytes.Index(body, historyKey)
	if i < 0 || !bytes.HasSuffix(body, historyEnd) || i+len(historyKey) > len(body)-len(historyEnd) {
		return nil, nil, false
	}
	const open, close = len("{"), len("\n    }") // the parts of a run inside the markers
	start, last := i+len(historyKey)-open, len(body)-len(historyEnd)+close
	for {
		n := bytes.Index(body[start:last], historySplit)
		if n < 0 {
			break
		}
		runs = append(runs, body[start:start+n+close:start+n+close])
		start += n + len(historySplit) - open
	}
	runs = append(runs, body[start:last:last])
	head = make([]byte, 0, i+2)
	head = append(head, body[:i]...)
	head = append(head, "\n}"...)
	return head, runs, true
}

// parseLazy decodes data but its history, which it keeps raw; the layout it
// does not know is decoded whole.
func parseLazy(data []byte) (*State, error) {
	head, runs, ok := splitHistory(data)
	if !ok {
		return Parse(data)
	}
	st := &State{}
	if err := json.Unmarshal(head, st); err != nil || st.History != nil {
		return Parse(data)
	}
	st.rawHistory = runs
	return st, nil
}

// HistoryLen is how many runs the history holds.
func (s *State) HistoryLen() int {
	if s.History == nil {
		return len(s.rawHistory)
	}
	return len(s.History)
}

// HistoryRun is run i of the history (0: the oldest). A run that does not
// decode comes back with its reason saying so.
func (s *State) HistoryRun(i int) Run {
	if s.History != nil {
		return s.History[i]
	}
	var r Run
	if err := json.Unmarshal(s.rawHistory[i], &r); err != nil {
		return Run{Result: "unknown", Reason: "this run's record does not decode: " + err.Error()}
	}
	return r
}

// HistoryRaw is run i of the history as JSON, as stored when it was kept
// raw and is one JSON value (status passes runs through without decoding
// them), else encoded from its decoded form.
func (s *State) HistoryRaw(i int) json.RawMessage {
	if s.History == nil && json.Valid(s.rawHistory[i]) {
		return s.rawHistory[i]
	}
	out, _ := json.Marshal(s.HistoryRun(i))
	return out
}

// Runs decodes the whole history (tickgate history).
func (s *State) Runs() []Run {
	if s.History != nil || s.rawHistory == nil {
		return s.History
	}
	out := make([]Run, len(s.rawHistory))
	for i := range s.rawHistory {
		out[i] = s.HistoryRun(i)
	}
	return out
}

// AddHistory appends run, keeping the last max (max <= 0: DefaultHistory).
func (s *State) AddHistory(run Run, max int) {
	if max <= 0 {
		max = DefaultHistory
	}
	if s.History == nil && s.rawHistory != nil {
		if raw, err := json.MarshalIndent(run, "    ", "  "); err == nil {
			s.rawHistory = append(s.rawHistory, raw) // JSON: rawValid stands
			if n := len(s.rawHistory) - max; n > 0 {
				s.rawHistory = append([][]byte(nil), s.rawHistory[n:]...)
			}
			return
		}
		s.History, s.rawHistory = s.Runs(), nil
	}
	s.History = append(s.History, run)
	if n := len(s.History) - max; n > 0 {
		s.History = append([]Run(nil), s.History[n:]...)
	}
}

// Marshal is state.json's content: indented, the history last, one run per
// entry (the layout parseLazy reads back without decoding the runs).
func (s *State) Marshal() ([]byte, error) {
	if s.History != nil || len(s.rawHistory) == 0 {
		return json.MarshalIndent(s, "", "  ")
	}
	head, err := json.MarshalIndent(s, "", "  ") // History is nil: omitted
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(head, []byte("\n}")) {
		s.History, s.rawHistory = s.Runs(), nil
		return json.MarshalIndent(s, "", "  ")
	}
	var b bytes.Buffer
	b.Grow(len(head) + 300*len(s.rawHistory))
	b.Write(head[:len(head)-2])
	b.WriteString(",\n  \"history\": [\n    ")
	for i, r := range s.rawHistory {
		if i > 0 {
			b.WriteString(",\n    ")
		}
		b.Write(r)
	}
	b.WriteString("\n  ]\n}")
	out := b.Bytes()
	if !s.rawValid && !json.Valid(out) {
		// A run kept raw that is not JSON after all: decode what can be.
		s.History, s.rawHistory = s.Runs(), nil
		return json.MarshalIndent(s, "", "  ")
	}
	return out, nil
}
