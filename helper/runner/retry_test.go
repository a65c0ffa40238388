package runner

import (
	"testing"
	"time"
)

func TestRetryDelay(t *testing.T) {
	lo := func(int64) int64 { return 0 }
	hi := func(n int64) int64 { return n - 1 }
	s := time.Second
	for _, c := range []struct {
		n          int
		delay, max time.Duration
		low, high  time.Duration
	}{
		{1, 10 * s, 0, 5 * s, 10 * s},                         // first retry: 10s, half of it jitter
		{2, 10 * s, 0, 10 * s, 20 * s},                        // doubled
		{4, 10 * s, 0, 40 * s, 80 * s},                        // 80s
		{5, 10 * s, 0, 80 * s, 160 * s},                       // 160s = 16 x, the default cap
		{9, 10 * s, 0, 80 * s, 160 * s},                       // capped
		{3, 10 * s, 25 * s, 12500 * time.Millisecond, 25 * s}, // an explicit cap
		{1, 0, 0, 0, 0},                                       // no delay
	} {
		if got := RetryDelay(c.n, c.delay, c.max, lo); got != c.low {
			t.Errorf("RetryDelay(%d, %s, %s) low = %s, want %s", c.n, c.delay, c.max, got, c.low)
		}
		if got := RetryDelay(c.n, c.delay, c.max, hi); got > c.high || got < c.high-time.Nanosecond {
			t.Errorf("RetryDelay(%d, %s, %s) high = %s, want %s", c.n, c.delay, c.max, got, c.high)
		}
	}
}
