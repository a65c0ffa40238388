package cronimport

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSchedule(t *testing.T) {
	for _, c := range []struct {
		spec, zone string
		want       []string
		err        string
	}{
		{"*/15 * * * *", "", []string{"*-*-* *:00/15:00"}, ""},
		{"0 2 * * *", "", []string{"*-*-* 02:00:00"}, ""},
		{"30 6 * * 1-5", "", []string{"Mon..Fri *-*-* 06:30:00"}, ""},
		{"0 0 * * 0", "", []string{"Sun *-*-* 00:00:00"}, ""},
		{"0 0 * * 7", "", []string{"Sun *-*-* 00:00:00"}, ""},
		{"0 0 * * sat,sun", "", []string{"Sat,Sun *-*-* 00:00:00"}, ""},
		{"5 4 * jan,jul *", "", []string{"*-01,07-* 04:05:00"}, ""},
		{"0 9-17 * * mon-fri", "", []string{"Mon..Fri *-*-* 09..17:00:00"}, ""},
		{"0,30 * * * *", "", []string{"*-*-* *:00,30:00"}, ""},
		{"10-40/10 * * * *", "", []string{"*-*-* *:10,20,30,40:00"}, ""},
		// cron's "or": both days restricted
		{"0 0 1,15 * 5", "", []string{"*-*-01,15 00:00:00", "Fri *-*-* 00:00:00"}, ""},
		// a stepped star beside a restricted day: crons disagree
		{"0 0 */2 * 5", "", nil, "runs on days matching both under Debian's cron"},
		{"0 0 */2 * *", "", []string{"*-*-01,03,05,07,09,11,13,15,17,19,21,23,25,27,29,31 00:00:00"}, ""},
		{"*/7 * * * *", "", []string{"*-*-* *:00,07,14,21,28,35,42,49,56:00"}, ""},
		{"0 */5 * * *", "", []string{"*-*-* 00,05,10,15,20:00:00"}, ""},
		{"0 0 1 */3 *", "", []string{"*-01/3-01 00:00:00"}, ""},
		{"0 0 * * */2", "", []string{"Tue,Thu,Sat,Sun *-*-* 00:00:00"}, ""},
		{"0 0 1 * 0-6", "", []string{"*-*-01 00:00:00", "*-*-* 00:00:00"}, ""},
		{"@weekly", "", []string{"Sun *-*-* 00:00:00"}, ""},
		{"@daily", "", []string{"*-*-* 00:00:00"}, ""},
		{"@midnight", "", []string{"*-*-* 00:00:00"}, ""},
		{"@hourly", "", []string{"*-*-* *:00:00"}, ""},
		{"@monthly", "", []string{"*-*-01 00:00:00"}, ""},
		{"@yearly", "", []string{"*-01-01 00:00:00"}, ""},
		{"@annually", "Europe/Berlin", []string{"*-01-01 00:00:00 Europe/Berlin"}, ""},
		{"15 3 * * *", "America/New_York", []string{"*-*-* 03:15:00 America/New_York"}, ""},
		{"@reboot", "", nil, "@reboot runs at boot"},
		{"@fortnightly", "", nil, "no cron @-schedule"},
		{"* * * *", "", nil, "want five time fields"},
		{"60 * * * *", "", nil, `minute: "60" is not a value from 0 to 59`},
		{"5/10 * * * *", "", nil, "a step after a single value"},
		{"0 5-2 * * *", "", nil, "runs backwards"},
		{"*/0 * * * *", "", nil, "step"},
		{"0 0 * foo *", "", nil, `month: "foo"`},
	} {
		got, err := Schedule(c.spec, c.zone)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("Schedule(%q) = %q, %v; want an error with %q", c.spec, got, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("Schedule(%q): %v", c.spec, err)
		case c.err == "" && !reflect.DeepEqual(got, c.want):
			t.Errorf("Schedule(%q) = %q, want %q", c.spec, got, c.want)
		}
	}
}

func TestCommand(t *testing.T) {
	sh := "/bin/sh"
	for _, c := range []struct {
		line string
		want Command
		err  string
	}{
		{"/opt/jobs/harvest --since yesterday", Command{Argv: []string{"/opt/jobs/harvest", "--since", "yesterday"}}, ""},
		{`/usr/bin/printf '%s\n' "a b"`, Command{Argv: []string{"/usr/bin/printf", `%s\n`, "a b"}}, ""},
		{"/opt/x > /dev/null 2>&1", Command{Argv: []string{sh, "-c", "/opt/x > /dev/null 2>&1"}}, ""},
		{"/opt/x | logger -t x", Command{Argv: []string{sh, "-c", "/opt/x | logger -t x"}}, ""},
		{"/opt/x $HOME", Command{Argv: []string{sh, "-c", "/opt/x $HOME"}}, ""},
		{"/opt/x /var/log/*.log", Command{Argv: []string{sh, "-c", "/opt/x /var/log/*.log"}}, ""},
		{"FOO=1 /opt/x", Command{Argv: []string{sh, "-c", "FOO=1 /opt/x"}}, ""},
		{"'/opt/my job' '$literal'", Command{Argv: []string{"/opt/my job", "$literal"}}, ""},
		{"flock -n /tmp/api.lock /opt/jobs/harvest --since yesterday",
			Command{Argv: []string{"/opt/jobs/harvest", "--since", "yesterday"}, Lock: "/tmp/api.lock"}, ""},
		{"flock -w 30 /run/lock/api.lock /opt/jobs/b", Command{Argv: []string{"/opt/jobs/b"}, Lock: "/run/lock/api.lock", LockWait: "30s"}, ""},
		{"flock /tmp/x.lock -c '/opt/a && /opt/b'", Command{Argv: []string{sh, "-c", "/opt/a && /opt/b"}, Lock: "/tmp/x.lock", LockWait: "1d"}, ""},
		{"flock -xn /tmp/x.lock /opt/a", Command{Argv: []string{"/opt/a"}, Lock: "/tmp/x.lock"}, ""},
		{"flock -xZ /tmp/x.lock /opt/a", Command{}, `option "-xZ"`},
		{"flock -s /tmp/x.lock /opt/a", Command{}, "shared lock"},
		{"run-one /opt/jobs/sync", Command{Argv: []string{"/opt/jobs/sync"}}, ""},
		{"chronic /opt/jobs/sync -q", Command{Argv: []string{"/opt/jobs/sync", "-q"}}, ""},
		{"timeout 1h /opt/jobs/sync", Command{Argv: []string{"/opt/jobs/sync"}, Timeout: "1h"}, ""},
		{"timeout 90 /opt/jobs/sync", Command{Argv: []string{"/opt/jobs/sync"}, Timeout: "90s"}, ""},
		{"timeout -s KILL 5m /opt/x", Command{}, "SIGTERM"},
		{"nice -n 15 ionice -c3 /opt/x", Command{Argv: []string{"/opt/x"}, Nice: ptr(15), IOClass: "idle"}, ""},
		{"cd /srv/app && ./bin/run --all", Command{Argv: []string{"./bin/run", "--all"}, WorkDir: "/srv/app"}, ""},
		{"cd /srv/app && make -s 2>&1 | tail", Command{Argv: []string{sh, "-c", "make -s 2>&1 | tail"}, WorkDir: "/srv/app"}, ""},
		{"flock -n /tmp/a.lock timeout 10m run-one /opt/x",
			Command{Argv: []string{"/opt/x"}, Lock: "/tmp/a.lock", Timeout: "10min"}, ""},
		{"/opt/x 'unclosed", Command{}, "single quote is never closed"},
		{"run-this-one /opt/x", Command{}, "restarts or kills runs"},
	} {
		got, err := ParseCommand(c.line, sh)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want one with %q", c.line, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.line, err)
			continue
		}
		got.Notes = nil
		if !reflect.DeepEqual(*got, c.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", c.line, *got, c.want)
		}
	}
}

func ptr(n int) *int { return &n }

func TestBaseNameOfShellLines(t *testing.T) {
	for line, want := range map[string]string{
		"test -e /run/systemd/system || SERVICE_MODE=1 /sbin/e2scrub_all -A -r":                                   "e2scrub_all",
		"[ -x /usr/lib/php/sessionclean ] && if [ ! -d /run/systemd/system ]; then /usr/lib/php/sessionclean; fi": "sessionclean",
		"test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }":                            "run-parts",
		"cd /srv && make -s | tail":                 "make",
		"$HOME/bin/daily.job >> $HOME/tmp/out 2>&1": "daily.job",
		"FOO=1 /opt/x":                              "x",
	} {
		if got := baseName([]string{"/bin/sh", "-c", line}); got != want {
			t.Errorf("%q: %q, want %q", line, got, want)
		}
	}
}

func TestPercent(t *testing.T) {
	if got, err := Percent(`date +\%Y-\%m-\%d`); err != nil || got != "date +%Y-%m-%d" {
		t.Errorf("escaped %%: %q %v", got, err)
	}
	if _, err := Percent("mail -s hi root%body%"); err == nil {
		t.Error("an unescaped % was not reported")
	}
}

func TestImport(t *testing.T) {
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	for _, d := range []string{"cron.d", "cron.daily"} {
		if err := os.MkdirAll(filepath.Join(etc, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, body string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(etc, p), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("crontab", `SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin
17 *	* * *	root	cd / && run-parts --report /etc/cron.hourly
25 6	* * *	root	test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }
`, 0o644)
	write("cron.d/harvest", `MAILTO=ops@example.com
0 2 * * *     harvest  flock -n /tmp/api.lock /opt/jobs/harvest --since yesterday
*/30 * * * *  harvest  flock -n /tmp/api.lock /opt/jobs/backfill --batch 500 || true
@reboot       harvest  /opt/jobs/warm
`, 0o644)
	write("cron.daily/logrotate", "#!/bin/sh\n", 0o755)
	write("cron.daily/man-db", "#!/bin/sh\n", 0o755)
	write("cron.daily/README.txt", "", 0o644)
	var paths []string
	for _, p := range []string{filepath.Join(etc, "crontab"), filepath.Join(etc, "cron.d"), filepath.Join(etc, "cron.daily")} {
		more, err := Expand(p)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, more...)
	}
	res, err := Import(paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*Job{}
	for _, j := range res.Jobs {
		byName[j.Name] = j
	}
	// The crontab's run-parts line of cron.daily is its schedule, not a
	// job; cron.hourly's (not imported) stays a job of its own.
	if res.Entries != 6 || len(res.Jobs) != 5 || len(res.Problems) != 1 {
		t.Fatalf("entries %d, jobs %d, problems %v", res.Entries, len(res.Jobs), res.Problems)
	}
	h, b := byName["harvest"], byName["backfill"]
	if h == nil || b == nil || h.Lock != "api" || b.Lock != "api" || h.User != "harvest" || h.LockWait != "" {
		t.Fatalf("harvest %+v, backfill %+v", h, b)
	}
	if !reflect.DeepEqual(b.Command, []string{"/bin/sh", "-c", "/opt/jobs/backfill --batch 500 || true"}) {
		t.Errorf("backfill's command %q", b.Command)
	}
	lr, md := byName["daily-logrotate"], byName["daily-man-db"]
	if lr == nil || md == nil || lr.Lock != "cron.daily" || md.Lock != "cron.daily" ||
		!reflect.DeepEqual(lr.Schedule, []string{"*-*-* 06:25:00"}) || lr.Command[0] != "/etc/cron.daily/logrotate" {
		t.Fatalf("logrotate %+v, man-db %+v", lr, md)
	}
	if lr.Environment["PATH"] != "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin" {
		t.Errorf("run-parts job's PATH: %v", lr.Environment)
	}
	if h.ReplacesFile != "/etc/cron.d/harvest" || h.ReplacesMatch != "0 2 * * *     harvest  flock -n /tmp/api.lock /opt/jobs/harvest --since yesterday" {
		t.Errorf("harvest replaces %q %q", h.ReplacesFile, h.ReplacesMatch)
	}
	if lr.ReplacesFile != "/etc/crontab" || md.ReplacesMatch != lr.ReplacesMatch || !strings.Contains(lr.ReplacesMatch, "run-parts --report /etc/cron.daily") {
		t.Errorf("the run-parts jobs replace %q %q and %q", lr.ReplacesFile, lr.ReplacesMatch, md.ReplacesMatch)
	}
	var out strings.Builder
	res.WriteYAML(&out)
	for _, want := range []string{"tickgate_jobs:", `- name: "harvest"`, `lock: "api"`, "MAILTO=ops@example.com", `schedule: "*-*-* 02:00:00"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the YAML lacks %q:\n%s", want, out.String())
		}
	}
}

func TestHostPath(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/cron.d/harvest":                               "/etc/cron.d/harvest",
		"/tmp/tickgate-cron-import/web1/etc/cron.d/harvest": "/etc/cron.d/harvest",
		"/tmp/x/web1/etc/crontab":                           "/etc/crontab",
		"/tmp/x/web1/var/spool/cron/crontabs/alice":         "/var/spool/cron/crontabs/alice",
		"/home/ops/harvest.cron":                            "/var/spool/cron/crontabs/harvest",
	} {
		if got := hostPath(in, "harvest"); got != want {
			t.Errorf("hostPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNamesAreStableAndUnique(t *testing.T) {
	r := &Result{Jobs: []*Job{
		{Command: []string{"/opt/a/run"}, Schedule: []string{"hourly"}, base: "run"},
		{Command: []string{"/opt/b/run"}, Schedule: []string{"hourly"}, base: "run"},
		{Command: []string{"/opt/c"}, Schedule: []string{"daily"}, base: "c"},
	}}
	r.name()
	first := []string{r.Jobs[0].Name, r.Jobs[1].Name, r.Jobs[2].Name}
	if first[0] == first[1] || first[2] != "c" || !strings.HasPrefix(first[0], "run-") {
		t.Fatalf("names %q", first)
	}
	r.name()
	if again := []string{r.Jobs[0].Name, r.Jobs[1].Name, r.Jobs[2].Name}; !reflect.DeepEqual(first, again) {
		t.Fatalf("names changed: %q then %q", first, again)
	}
	for in, want := range map[string]string{"My.Script.sh": "my.script.sh", "__x": "x", "catch-up": "cron-catch-up", "!!": "cron"} {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}
