"""The documentation's own test (make docs-check, part of make test): every
relative link and anchor in README.md, BENCHMARKS.md, CHANGELOG.md and docs/
resolves, every YAML example parses, every example that sets tickgate_jobs
passes the preflight's controller-side checks (the same function the deploy
runs), and docs/role-variables.md is what scripts/gen-role-docs writes."""

import copy
import glob
import os
import re
import subprocess
import sys
import unittest

import yaml

TOP = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "plugins", "action"))
import tickgate_plan  # noqa: E402

DOCS = sorted(
    [os.path.join(TOP, p) for p in ("README.md", "BENCHMARKS.md", "CHANGELOG.md")]
    + glob.glob(os.path.join(TOP, "docs", "**", "*.md"), recursive=True)
)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\s*$")


def rel(path):
    return os.path.relpath(path, TOP)


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation but - and _
    dropped, spaces to hyphens."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def parse(path):
    """(anchors, links, blocks) of a Markdown file: links are (line, target)
    outside code; blocks are (line, language, text) of fenced code."""
    anchors, links, blocks = set(), [], []
    seen = {}
    fence = None
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for n, line in enumerate(lines, 1):
        m = FENCE.match(line)
        if fence is None and m:
            fence = (n, m.group(1), [])
            continue
        if fence is not None:
            if line.startswith("```"):
                blocks.append((fence[0], fence[1], "\n".join(fence[2])))
                fence = None
            else:
                fence[2].append(line)
            continue
        h = re.match(r"^#{1,6} (.*)$", line)
        if h:
            s = slug(h.group(1))
            k = seen.get(s, 0)
            seen[s] = k + 1
            anchors.add(s if k == 0 else "%s-%d" % (s, k))
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            links.append((n, target))
    if fence is not None:
        raise AssertionError("%s:%d: a code block is never closed" % (rel(path), fence[0]))
    return anchors, links, blocks


def placeholders(v):
    """An example's Jinja expressions stand for values the reader supplies:
    a whole value that is one expression becomes a URL (what such values
    hold in the examples: notification targets from a vault), an expression
    inside text a word."""
    if isinstance(v, dict):
        return {k: placeholders(x) for k, x in v.items()}
    if isinstance(v, list):
        return [placeholders(x) for x in v]
    if isinstance(v, str) and re.fullmatch(r"\{\{.*?\}\}", v.strip()):
        return "https://placeholder.invalid/"
    if isinstance(v, str) and "{{" in v:
        return re.sub(r"\{\{.*?\}\}", "placeholder", v)
    return v


class Docs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.parsed = {p: parse(p) for p in DOCS}

    def test_there_are_docs(self):
        names = {rel(p) for p in DOCS}
        for want in ("README.md", "BENCHMARKS.md", "docs/deploying.md", "docs/writing-jobs.md", "docs/operating.md"):
            self.assertIn(want, names)

    def test_readme_is_short(self):
        with open(os.path.join(TOP, "README.md"), encoding="utf-8") as f:
            self.assertLessEqual(len(f.read().split("\n")), 200, "README.md: keep it to 200 lines; the rest belongs in docs/")

    def test_links_and_anchors_resolve(self):
        problems = []
        for path, parsed in self.parsed.items():
            links = parsed[1]
            for n, target in links:
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    continue  # http:, https:, mailto:
                file, anchor = (target.split("#", 1) + [""])[:2]
                dest = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
                where = "%s:%d: %s" % (rel(path), n, target)
                if not os.path.exists(dest):
                    problems.append("%s: no such file %s" % (where, rel(dest)))
                    continue
                if anchor:
                    if not dest.endswith(".md"):
                        problems.append("%s: an anchor into a file that is not Markdown" % where)
                    elif anchor not in (self.parsed.get(dest) or parse(dest))[0]:
                        problems.append("%s: no heading with anchor #%s in %s" % (where, anchor, rel(dest)))
        self.assertEqual(problems, [], "\n".join(problems))

    def test_yaml_examples_parse(self):
        problems, count = [], 0
        for path, parsed in self.parsed.items():
            blocks = parsed[2]
            for n, lang, text in blocks:
                if lang not in ("yaml", "yml"):
                    continue
                count += 1
                try:
                    yaml.safe_load(text)
                except yaml.YAMLError as e:
                    problems.append("%s:%d: %s" % (rel(path), n, " ".join(str(e).split())))
        self.assertGreater(count, 5)
        self.assertEqual(problems, [], "\n".join(problems))

    def test_job_examples_pass_preflight(self):
        with open(os.path.join(TOP, "roles", "tickgate", "defaults", "main.yml"), encoding="utf-8") as f:
            defaults = yaml.safe_load(f)
        spec = tickgate_plan._spec(os.path.join(TOP, "roles", "tickgate", "meta", "argument_specs.yml"))
        problems, count = [], 0
        for path, parsed in self.parsed.items():
            blocks = parsed[2]
            for n, lang, text in blocks:
                if lang not in ("yaml", "yml"):
                    continue
                try:
                    doc = yaml.safe_load(text)
                except yaml.YAMLError:
                    continue  # reported by test_yaml_examples_parse
                if not isinstance(doc, dict) or "tickgate_jobs" not in doc:
                    continue
                count += 1
                values = copy.deepcopy(defaults)
                values["tickgate_fleet_host"] = "h1"
                values.update(placeholders(doc))
                msg = tickgate_plan.check("example", values, spec)
                if msg:
                    problems.append("%s:%d: %s" % (rel(path), n, msg))
        self.assertGreater(count, 3)
        self.assertEqual(problems, [], "\n".join(problems))

    def test_role_variables_are_generated(self):
        r = subprocess.run(
            [sys.executable, os.path.join(TOP, "scripts", "gen-role-docs"), "--check"],
            capture_output=True,
            text=True,
            check=False,
        )
        self.assertEqual(r.returncode, 0, r.stderr)


class Slug(unittest.TestCase):
    def test_github_rules(self):
        for heading, want in [
            ("Security model", "security-model"),
            ("What `site.yml` does", "what-siteyml-does"),
            ("Fleet lock groups: leases on the database's clock", "fleet-lock-groups-leases-on-the-databases-clock"),
            ("`tickgate run [flags] JOB -- COMMAND [ARG...]`", "tickgate-run-flags-job----command-arg"),
        ]:
            self.assertEqual(slug(heading), want)


if __name__ == "__main__":
    unittest.main()
