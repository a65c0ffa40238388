package commands

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Off a terminal the spinner draws nothing; on one it redraws one line in
// place with the elapsed time and clears it when stopped.
func TestSpinner(t *testing.T) {
	var b bytes.Buffer
	sp := newSpinner(&b, "job x: running")
	if sp.tick() != nil {
		t.Fatal("a spinner off a terminal ticks")
	}
	sp.stop()
	if b.Len() != 0 {
		t.Fatalf("off a terminal it wrote %q", b.String())
	}
	sp = &spinner{w: &b, label: "job x: running", on: true, start: time.Now().Add(-3 * time.Second), ticker: time.NewTicker(time.Hour)}
	sp.draw()
	sp.draw()
	sp.stop()
	sp.stop()
	got := b.String()
	if !strings.HasPrefix(got, "\r/ job x: running 3s\x1b[K\r- job x: running 3s\x1b[K") || !strings.HasSuffix(got, "\r\x1b[K") || strings.Count(got, "\r\x1b[K") != 1 {
		t.Fatalf("drew %q", got)
	}
}
