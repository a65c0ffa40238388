"""The job contract's shared cases (helper/testdata/contract.json): the
helper's Go suite (helper/cli/contract_test.go) runs the same file, so
preflight and the helper cannot drift apart. Every value the helper rejects,
preflight rejects first, naming the job and the field."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "plugins", "filter"))
import tickgate as t  # noqa: E402

CASES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "helper", "testdata", "contract.json")


def job(**kw):
    j = {"name": "j", "command": ["/bin/true"], "schedule": "hourly"}
    j.update(kw)
    return j


# How each contract field appears in a job: (field in the job, value -> value).
FIELDS = {
    "job_name": [("name", lambda v: v)],
    "lock_name": [("lock", lambda v: v)],
    "duration": [(f, lambda v: v) for f in ("lock_wait", "expected_runtime", "timeout", "randomized_delay", "accuracy")],
    "codes": [(f, lambda v: v) for f in ("ok_codes", "done_codes", "halt_codes")],
    "halt_after": [("halt_after", lambda v: v)],
}


class Contract(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(CASES, encoding="utf-8") as f:
            cls.cases = json.load(f)

    def errors(self, field, value):
        j = job(**{field: value})
        if field in ("ok_codes", "done_codes", "halt_codes") and value != [] and isinstance(value, list):
            # the other code lists must not overlap: give the mode's done/halt none
            j.update({f: [] for f in ("ok_codes", "done_codes", "halt_codes") if f != field})
            if field != "ok_codes":
                j["ok_codes"] = [c for c in [200] if c not in value]
        return [e for e in t.tickgate_job_errors([j]) if (": %s: " % field) in e]

    def test_every_case(self):
        for key, uses in FIELDS.items():
            sets = self.cases[key]
            extra = sets.get("preflight_only", {})
            for field, conv in uses:
                for v in sets["valid"] + extra.get("valid", []):
                    with self.subTest(field=field, valid=v):
                        self.assertEqual(self.errors(field, conv(v)), [], "preflight rejects a valid %s %r" % (field, v))
                for v in sets["invalid"] + extra.get("invalid", []):
                    with self.subTest(field=field, invalid=v):
                        errs = self.errors(field, conv(v))
                        self.assertEqual(len(errs), 1, "preflight accepts an invalid %s %r: %r" % (field, v, errs))
                        self.assertTrue(errs[0].startswith(("job ", "tickgate_jobs[0]: name:")), errs[0])


if __name__ == "__main__":
    unittest.main()
