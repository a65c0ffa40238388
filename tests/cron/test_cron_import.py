"""tickgate cron import against an independent cron implementation.

For each of the real-world crontab lines below (Debian packages' /etc/cron.d
files and /etc/crontab, the crontab(5) examples, Launchpad- and regluit-style
flock-wrapped entries, and schedule shapes that trip people up), the built
helper (dist/tickgate) imports it; the next 500 firings of the produced
OnCalendar expressions (systemd-analyze calendar --iterations=500) must be
exactly croniter's next 500 firings of the cron line. A line the importer
reports as not converted must be one this table expects it to refuse, with
the reason named. Every produced job list passes the preflight's checks.

Run by `make test` (step "cron import") after `make build`."""

import copy
import os
import re
import subprocess
import sys
import tempfile
import unittest
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import yaml
from croniter import croniter

TOP = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "plugins", "action"))
import tickgate_plan  # noqa: E402

TICKGATE = os.environ.get("TICKGATE_BIN", os.path.join(TOP, "dist", "tickgate"))
ITERATIONS = 500

# (cron line as a user crontab has it, None to convert; else a piece of the
# reason it must be refused with). A line may start with CRON_TZ=ZONE; to put
# the entry in that zone.
LINES = [
    # Debian's /etc/crontab (as a user crontab: the user column dropped)
    ("17 *\t* * *\tcd / && run-parts --report /etc/cron.hourly", None),
    ("25 6\t* * *\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }", None),
    ("47 6\t* * 7\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }", None),
    ("52 6\t1 * *\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.monthly; }", None),
    # Debian packages' /etc/cron.d
    (
        "09,39 *     * * *     [ -x /usr/lib/php/sessionclean ] && if [ ! -d /run/systemd/system ]; then /usr/lib/php/sessionclean; fi",
        None,
    ),
    ("5-55/10 * * * * command -v debian-sa1 > /dev/null && debian-sa1 1 1", None),
    ("59 23 * * * command -v debian-sa1 > /dev/null && debian-sa1 60 2", None),
    ("30 3 * * 0 test -e /run/systemd/system || SERVICE_MODE=1 /usr/lib/x86_64-linux-gnu/e2fsprogs/e2scrub_all_cron", None),
    ("10 3 * * * test -e /run/systemd/system || SERVICE_MODE=1 /sbin/e2scrub_all -A -r", None),
    ("5 8 * * * test -x /etc/cron.daily/popularity-contest && /etc/cron.daily/popularity-contest --crond", None),
    (
        "30 7-23 * * * [ -x /etc/init.d/anacron ] && if [ ! -d /run/systemd/system ]; then /usr/sbin/invoke-rc.d anacron start >/dev/null; fi",
        None,
    ),
    (
        "0 */12 * * * test -x /usr/bin/certbot -a \\! -d /run/systemd/system && perl -e 'sleep int(rand(43200))' && certbot -q renew",
        None,
    ),
    (
        "57 0 * * 0 if [ -x /usr/share/mdadm/checkarray ] && [ $(date +\\%d) -le 7 ]; then /usr/share/mdadm/checkarray --cron --all --idle --quiet; fi",
        None,
    ),
    ("*/5 * * * * [ -x /usr/sbin/dnsmasq ] && /usr/local/sbin/refresh-blocklist", None),
    ("0 4 * * * /usr/sbin/logrotate /etc/logrotate.conf", None),
    ("@daily /usr/bin/find /var/tmp -mtime +7 -delete", None),
    ("2 * * * * /usr/lib/sysstat/debian-sa1 1 1", None),
    ("0 1 * * * /usr/bin/mandb --quiet", None),
    # crontab(5)
    ("5 0 * * *       $HOME/bin/daily.job >> $HOME/tmp/out 2>&1", None),
    ("15 14 1 * *     $HOME/bin/monthly", None),
    ('0 22 * * 1-5    mail -s "It\'s 10pm" joe%Joe,%%Where are your kids?%', "unescaped %"),
    ('23 0-23/2 * * * echo "run 23 minutes after midn, 2am, 4am ..., everyday"', None),
    ('5 4 * * sun     echo "run at 5 after 4 every sunday"', None),
    ('0 */4 1 * mon   echo "run every 4th hour on the 1st and on every Monday"', None),
    ('0 0 1,15 * 1    echo "run on the 1st, the 15th and every Monday"', None),
    ("@reboot /usr/local/bin/warm-cache", "@reboot runs at boot"),
    # Launchpad-style cronscripts, each under its own lock
    ("*/5 * * * * flock -n /var/lock/lp-process-mail.lock /srv/launchpad/cronscripts/process-mail.py -q", None),
    ("0 2 * * * flock -w 600 /var/lock/lp-garbo.lock /srv/launchpad/cronscripts/garbo-daily.py -q", None),
    ("*/10 * * * * flock -n /var/lock/lp-garbo.lock /srv/launchpad/cronscripts/garbo-frequently.py -q", None),
    ("15 * * * * flock -xn /var/lock/lp-ppa.lock /srv/launchpad/cronscripts/process-accepted.py --ppa -q", None),
    ("3,33 * * * * flock -n /var/lock/lp-translations.lock timeout 25m /srv/launchpad/cronscripts/rosetta-poimport.py", None),
    ("0 6 * * 1 flock -n /var/lock/lp-weekly.lock nice -n 10 /srv/launchpad/cronscripts/librarian-gc.py -q", None),
    ("45 23 * * * run-one /srv/launchpad/cronscripts/update-stats.py", None),
    ("0 */6 * * * chronic /srv/launchpad/cronscripts/product-release-finder.py", None),
    # regluit-style harvest and backfill sharing an API lock
    ("0 2 * * * flock -n /tmp/api.lock /opt/jobs/harvest --since yesterday", None),
    ("*/30 * * * * flock -n /tmp/api.lock /opt/jobs/backfill --batch 500 || true", None),
    (
        "*/30 * * * * cd /srv/regluit && /srv/regluit/venv/bin/python manage.py harvest_online_ebooks >> /var/log/regluit/harvest.log 2>&1",
        None,
    ),
    ("0 3 * * * cd /srv/regluit && ./venv/bin/python manage.py clearsessions", None),
    # schedule shapes
    ("* * * * * /opt/x", None),
    ("*/7 * * * * /opt/x", None),
    ("1-59/2 * * * * /opt/x", None),
    ("0 9-17/2 * * 1-5 /opt/x", None),
    ("0,15,30,45 8-18 * * mon-fri /opt/x", None),
    ("0 12 * * 1,3,5 /opt/x", None),
    ("30 23 28-31 * * /opt/x", None),
    ("0 0 31 * * /opt/x", None),
    ("0 6 * 1-3,10-12 * /opt/x", None),
    ("15 */3 * * * /opt/x", None),
    ("0 0 * * 6,0 /opt/x", None),
    ("0 0 1 1 * /opt/x", None),
    ("0 0 1 */3 * /opt/x", None),
    ("0 3 1-7 * 0 /opt/x", None),
    ("0 0 13 * 5 /opt/x", None),
    ("0 0 * * 7 /opt/x", None),
    ("0 0 * * 0-7 /opt/x", None),
    ("0 0 1 * 0-6 /opt/x", None),
    ("0 0 */2 * * /opt/x", None),
    ("0 0 * * */2 /opt/x", None),
    ("0 0 */2 * 5 /opt/x", "matching both under Debian's cron"),
    ("0 0 29 2 * /opt/x", None),
    ("0 0 30 2 * /opt/x", "never fires"),
    ("5/10 * * * * /opt/x", "a step after a single value"),
    ("0 0 L * * /opt/x", "day of month"),
    ("0 5 * JAN,Jul * /opt/x", None),
    ("@hourly /opt/x", None),
    ("@weekly /opt/x", None),
    ("@monthly /opt/x", None),
    ("@yearly /opt/x", None),
    ("@midnight /opt/x", None),
    ("CRON_TZ=America/New_York\n0 6 * * * /opt/x", None),
    ("CRON_TZ=Asia/Tokyo\n30 9 * * 1-5 /opt/x", None),
    ("CRON_TZ=Europe/Berlin\n0 12 1,15 * * /opt/x", None),
]

ELAPSE = re.compile(r"^\s*(?:Next elapse|Iter\. #\d+|Iteration #\d+):\s+\w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC$")


def firings(schedules):
    """The next firings of OnCalendar expressions, in UTC, as systemd
    computes them (the union of every expression's)."""
    out = set()
    env = dict(os.environ, TZ="UTC", LC_ALL="C")
    for expr in schedules:
        r = subprocess.run(
            ["systemd-analyze", "calendar", "--iterations=%d" % ITERATIONS, "--", expr],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        for line in r.stdout.splitlines():
            m = ELAPSE.match(line)
            if m:
                out.add(datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc))
    return sorted(out)[:ITERATIONS]


def cron_firings(spec, zone, after, n):
    """croniter's next n firings of spec after the instant after, in UTC."""
    tz = ZoneInfo(zone) if zone else timezone.utc
    it = croniter(spec, after.astimezone(tz))
    return [it.get_next(datetime).astimezone(timezone.utc) for i in range(n)]


def import_line(text):
    """Runs tickgate cron import on a user crontab holding text: its exit
    status, parsed YAML and stderr."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "crontab")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        r = subprocess.run([TICKGATE, "cron", "import", path], capture_output=True, text=True, check=False)
    return r.returncode, yaml.safe_load(r.stdout) if r.stdout else None, r.stderr


class CronImport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(TICKGATE, os.X_OK):
            raise unittest.SkipTest("%s not built: run make build first (make test does)" % TICKGATE)
        with open(os.path.join(TOP, "roles", "tickgate", "defaults", "main.yml"), encoding="utf-8") as f:
            cls.defaults = yaml.safe_load(f)
        cls.spec = tickgate_plan._spec(os.path.join(TOP, "roles", "tickgate", "meta", "argument_specs.yml"))

    def test_enough_lines(self):
        self.assertGreaterEqual(len(LINES), 60)

    def test_every_line_fires_as_cron_would(self):
        for text, refused in LINES:
            with self.subTest(line=text):
                code, out, err = import_line(text)
                if refused is not None:
                    self.assertEqual(code, 1, err)
                    self.assertIn(refused, err)
                    self.assertIn("converted 0 of 1", err)
                    continue
                self.assertEqual(code, 0, err)
                jobs = out["tickgate_jobs"]
                self.assertEqual(len(jobs), 1, out)
                job = jobs[0]
                values = copy.deepcopy(self.defaults)
                values["tickgate_fleet_host"] = "h1"
                values["tickgate_jobs"] = jobs
                self.assertEqual(tickgate_plan.check("h1", values, self.spec), "")
                schedules = job["schedule"] if isinstance(job["schedule"], list) else [job["schedule"]]
                got = firings(schedules)
                self.assertGreaterEqual(len(got), 30, "systemd-analyze gave %d firings of %s" % (len(got), schedules))
                entry = text.splitlines()[-1]
                zone = text.split("\n")[0].split("=", 1)[1] if text.startswith("CRON_TZ=") else ""
                spec = " ".join(entry.split()[:1]) if entry.startswith("@") else " ".join(entry.split()[:5])
                want = cron_firings(spec, zone, got[0] - timedelta(seconds=1), len(got))
                self.assertEqual(
                    got, want, "first difference at %s" % next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
                )

    def test_a_flock_pair_shares_a_lock_group(self):
        code, out, err = import_line(
            "MAILTO=ops@example.com\n"
            "0 2 * * *     flock -n /tmp/api.lock /opt/jobs/harvest --since yesterday\n"
            "*/30 * * * *  flock -n /tmp/api.lock /opt/jobs/backfill --batch 500\n"
            "0 * * * *     flock -w 30 /tmp/other.lock /opt/jobs/publish"
        )
        self.assertEqual(code, 0, err)
        jobs = {j["name"]: j for j in out["tickgate_jobs"]}
        self.assertEqual(jobs["harvest"]["lock"], "api")
        self.assertEqual(jobs["backfill"]["lock"], "api")
        self.assertEqual(jobs["publish"]["lock"], "other")
        self.assertEqual(jobs["publish"]["lock_wait"], "30s")
        self.assertNotIn("lock_wait", jobs["harvest"])
        self.assertEqual(jobs["backfill"]["command"], ["/opt/jobs/backfill", "--batch", "500"])

    def test_usage_errors(self):
        r = subprocess.run([TICKGATE, "cron", "import"], capture_output=True, text=True, check=False)
        self.assertEqual(r.returncode, 64, r.stderr)
        r = subprocess.run([TICKGATE, "cron", "import", "/nonexistent/crontab"], capture_output=True, text=True, check=False)
        self.assertEqual(r.returncode, 64, r.stderr)
        self.assertIn("/nonexistent/crontab", r.stderr)


if __name__ == "__main__":
    unittest.main()
