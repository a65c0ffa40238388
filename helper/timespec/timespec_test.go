package timespec

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"90", 90 * time.Second, true},
		{"1.5", 1500 * time.Millisecond, true},
		{"90s", 90 * time.Second, true},
		{"5min", 5 * time.Minute, true},
		{"1h 30m", 90 * time.Minute, true},
		{"1h30m0s", 90 * time.Minute, true},
		{"2d", 48 * time.Hour, true},
		{"1w", 7 * 24 * time.Hour, true},
		{"250ms", 250 * time.Millisecond, true},
		{"10 sec", 10 * time.Second, true},
		{"", 0, false},
		{"-5s", 0, false},
		{"5 parsecs", 0, false},
		{"1h 30", 0, false},
		{"abc", 0, false},
		{"1e9", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseDuration(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok && got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"now", now, true},
		{"+30m", now.Add(30 * time.Minute), true},
		{"+1h 30min", now.Add(90 * time.Minute), true},
		{"2026-11-23T18:00:00Z", time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC), true},
		{"2026-11-23T18:00:00+01:00", time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC), true},
		{"", time.Time{}, false},
		{"tomorrow", time.Time{}, false},
		{"+", time.Time{}, false},
		{"2026-11-23 18:00", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in, now)
		if (err == nil) != tt.ok {
			t.Errorf("ParseTime(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok && !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
