// Package cronimport turns crontab lines into tickgate jobs: the schedule
// (cron's five fields, or an @keyword) into OnCalendar= expressions that
// fire at exactly the same times, the command into an argv (a shell only
// where the line needs one), and the wrappers teams put in front of a
// command (flock, run-one, chronic, timeout, nice, ionice, cd DIR &&) into
// the job's fields. What it cannot convert faithfully it says, and why.
package cronimport

import (
	"fmt"
	"strconv"
	"strings"
)

// field is one of cron's five time fields.
type field struct {
	name     string
	min, max int
	names    map[string]int
}

var (
	monthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
	dayNames = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
	fields   = [5]field{
		{"minute", 0, 59, nil},
		{"hour", 0, 23, nil},
		{"day of month", 1, 31, nil},
		{"month", 1, 12, monthNames},
		{"day of week", 0, 7, dayNames},
	}
)

// keywords are cron's @-schedules, as the five fields they stand for (cron's
// @weekly is Sunday's midnight; systemd's weekly is Monday's).
var keywords = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

// set is a set of values 0..63.
type set uint64

func (s set) has(v int) bool { return s&(1<<uint(v)) != 0 }

// span is every value of f.
func span(f field) set {
	var s set
	for v := f.min; v <= f.max; v++ {
		s |= 1 << uint(v)
	}
	return s
}

// parseField reads one field: lists of *, N, N-M, with /STEP after * or a
// range; names where the field has them. star is cron's own test for the
// day rule: the field starts with "*" (so "*/2" counts as a star).
func parseField(text string, f field) (s set, star bool, err error) {
	if text == "" {
		return 0, false, fmt.Errorf("%s: empty", f.name)
	}
	star = strings.HasPrefix(text, "*")
	for _, item := range strings.Split(text, ",") {
		rng, stepText, hasStep := strings.Cut(item, "/")
		lo, hi := f.min, f.max
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			if lo, err = value(a, f); err != nil {
				return 0, false, err
			}
			if hi, err = value(b, f); err != nil {
				return 0, false, err
			}
			if hi < lo {
				return 0, false, fmt.Errorf("%s: range %q runs backwards", f.name, rng)
			}
		default:
			if hasStep {
				// "5/10": 5-59/10 to some crons, 5 to others.
				return 0, false, fmt.Errorf("%s: %q: a step after a single value means different things to different crons; write %s-%d/%s", f.name, item, rng, f.max, stepText)
			}
			if lo, err = value(rng, f); err != nil {
				return 0, false, err
			}
			hi = lo
		}
		step := 1
		if hasStep {
			if step, err = strconv.Atoi(stepText); err != nil || step < 1 || step > f.max {
				return 0, false, fmt.Errorf("%s: step %q is not a number from 1 to %d", f.name, stepText, f.max)
			}
		}
		for v := lo; v <= hi; v += step {
			s |= 1 << uint(v)
		}
	}
	if f.max == 7 && s.has(7) { // day of week: 7 is Sunday too
		s = s&^(1<<7) | 1
	}
	return s, star, nil
}

// value reads a number or a name of field f.
func value(text string, f field) (int, error) {
	if n, ok := f.names[strings.ToLower(text)]; ok {
		return n, nil
	}
	n, err := strconv.Atoi(text)
	if err != nil || n < f.min || n > f.max {
		return 0, fmt.Errorf("%s: %q is not a value from %d to %d", f.name, text, f.min, f.max)
	}
	return n, nil
}

// Schedule converts cron's five fields (or an @keyword) into OnCalendar=
// expressions whose union fires exactly when cron would, in zone when it is
// set (CRON_TZ). Two expressions where cron's day rule is an "or": when
// both the day of month and the day of week are restricted (neither starts
// with "*"), cron runs on either; OnCalendar's days are an "and".
func Schedule(spec, zone string) ([]string, error) {
	if strings.HasPrefix(spec, "@") {
		five, ok := keywords[strings.ToLower(spec)]
		if !ok {
			if strings.EqualFold(spec, "@reboot") {
				return nil, fmt.Errorf("@reboot runs at boot, not on a calendar: a oneshot unit with WantedBy=multi-user.target is its systemd form, not a timer")
			}
			return nil, fmt.Errorf("%q is no cron @-schedule", spec)
		}
		spec = five
	}
	parts := strings.Fields(spec)
	if len(parts) != 5 {
		return nil, fmt.Errorf("%q: want five time fields (minute hour day-of-month month day-of-week)", spec)
	}
	var sets [5]set
	var stars [5]bool
	for i, p := range parts {
		s, star, err := parseField(p, fields[i])
		if err != nil {
			return nil, err
		}
		sets[i], stars[i] = s, star
	}
	minute := numbers(sets[0], fields[0])
	hour := numbers(sets[1], fields[1])
	month := numbers(sets[3], fields[3])
	dom := numbers(sets[2], fields[2])
	dow := weekdays(sets[4])
	suffix := ""
	if zone != "" {
		suffix = " " + zone
	}
	at := func(dowPart, domPart string) string {
		e := fmt.Sprintf("*-%s-%s %s:%s:00%s", month, domPart, hour, minute, suffix)
		if dowPart != "" {
			e = dowPart + " " + e
		}
		return e
	}
	full2, full4 := sets[2] == span(fields[2]), sets[4]&0x7f == 0x7f
	if (stars[2] && !full2 && !full4) || (stars[4] && !full4 && !full2) {
		// "*/2" on one side and a restricted other side: Debian's cron
		// (Vixie's, cronie's) takes a field that starts with "*" as a star
		// and runs on days matching both; other crons (croniter, some
		// schedulers) on days matching either. No schedule says both.
		return nil, fmt.Errorf("%q: a stepped star (%s) beside a restricted other day field runs on days matching both under Debian's cron and either under others; write the days out (%s)",
			spec, map[bool]string{true: parts[2], false: parts[4]}[stars[2] && !full2], "e.g. 1-31/2 instead of */2")
	}
	if stars[2] || stars[4] {
		// cron's "and": a star on either side means the other decides
		// alone.
		return []string{at(dow, dom)}, nil
	}
	// Both restricted: either one fires.
	days := []string{at("", dom), at(dow, "*")}
	if days[0] == days[1] {
		return days[:1], nil
	}
	return days, nil
}

// numbers writes a set of f's values as OnCalendar writes a component: "*"
// for every value, else a list of values and ranges (zero-padded), or a
// START/STEP repetition where systemd reads it as cron does.
func numbers(s set, f field) string {
	if s == span(f) {
		return "*"
	}
	var vals []int
	for v := f.min; v <= f.max; v++ {
		if s.has(v) {
			vals = append(vals, v)
		}
	}
	// START/STEP where systemd repeats it the way cron does: a step that
	// divides the field's span (minutes 60, hours 24, months 12) from a
	// start inside the first step, to the end of the span. Elsewhere it
	// does not (systemd 252 skips midnight for *:00/7, whose last value
	// is 56): a list.
	if f.name != "day of month" && len(vals) >= 3 {
		step, spanN := vals[1]-vals[0], f.max-f.min+1
		even := step > 1 && spanN%step == 0 && vals[0]-f.min < step && len(vals) == spanN/step
		for i := 2; i < len(vals) && even; i++ {
			even = vals[i]-vals[i-1] == step
		}
		if even {
			return fmt.Sprintf("%02d/%d", vals[0], step)
		}
	}
	var out []string
	for i := 0; i < len(vals); {
		j := i
		for j+1 < len(vals) && vals[j+1] == vals[j]+1 {
			j++
		}
		switch {
		case j-i >= 2:
			out = append(out, fmt.Sprintf("%02d..%02d", vals[i], vals[j]))
		case j == i+1:
			out = append(out, fmt.Sprintf("%02d", vals[i]), fmt.Sprintf("%02d", vals[j]))
		default:
			out = append(out, fmt.Sprintf("%02d", vals[i]))
		}
		i = j + 1
	}
	return strings.Join(out, ",")
}

// weekdays writes a set of cron's days of the week (0 = Sunday) as
// OnCalendar's weekday component, Monday first; "" for every day.
func weekdays(s set) string {
	names := []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	order := []int{1, 2, 3, 4, 5, 6, 0}
	all := true
	for _, d := range order {
		all = all && s.has(d)
	}
	if all {
		return ""
	}
	var out []string
	for i := 0; i < len(order); {
		if !s.has(order[i]) {
			i++
			continue
		}
		j := i
		for j+1 < len(order) && s.has(order[j+1]) {
			j++
		}
		switch {
		case j-i >= 2:
			out = append(out, names[order[i]]+".."+names[order[j]])
		case j == i+1:
			out = append(out, names[order[i]], names[order[j]])
		default:
			out = append(out, names[order[i]])
		}
		i = j + 1
	}
	return strings.Join(out, ",")
}
