# -*- coding: utf-8 -*-
# Copyright (c) 2026 tickgate developers; MIT License (see LICENSE)
"""tickgate's layout on a host: its directories, each job's state and data directory (migrating
job-owned state dirs, rebuilding what a job could have forged), the notification targets and the jobs'
environments, root's files, the accounts check, the jobs' files."""

from __future__ import annotations

import base64
import datetime
import grp
import json
import os
import pwd
import re
import stat

from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_sys import run, write_atomic
from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_unitfiles import current_units


def notify(module, p):
    """Each job's targets file (0600, the supervisor's); others removed."""
    if not p["dir"] or not p["owner"]:
        raise RuntimeError("notify needs dir and owner")
    return secret_dir(module, p["dir"], p["secret_files"], p["owner"], p["group"])


def secret_dir(module, d, files, owner, group):
    """Each of files (name to content) in d, 0600 and owner's; the other
    *.json files there removed. For files only tickgate reads, whose content
    may be a secret: a job's notification targets, its environment."""
    check = module.check_mode
    changes = []
    uid, gid = _ids(owner, group, check)
    _ensure_dir(d, 0, 0, 0o755, check, changes)
    for name, content in sorted(files.items()):
        if "/" in name or not name.endswith(".json") or name.startswith("."):
            raise RuntimeError("%r is not a job's file name in %s" % (name, d))
        path = os.path.join(d, name)
        try:
            st = os.lstat(path)
            with open(path) as f:
                same = (
                    stat.S_ISREG(st.st_mode)
                    and f.read() == content
                    and (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, gid, 0o600)
                )
        except FileNotFoundError:
            same = False
        if not same:
            changes.append(path)
            if not check:
                write_atomic(path, content, mode=0o600, uid=uid, gid=gid)
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        names = []
    for name in sorted(names):
        if name.endswith(".json") and name not in files:
            changes.append("remove %s" % os.path.join(d, name))
            if not check:
                os.unlink(os.path.join(d, name))
    return changes


def lay_out(module, p):
    """The layout, then (with p["dir"]) the notification targets and (with
    p["env_dir"]) the jobs' environment files in the same round trip: the
    layout's changes, what it moved, the files changed."""
    changes, moved = layout(module, p)
    files = notify(module, p) if p["dir"] else []
    if p.get("env_dir"):
        files += secret_dir(module, p["env_dir"], p.get("env_files") or {}, p["owner"], p["group"])
    return changes, moved, files


def host(module, p):
    """Root's directories and files, and which accounts need fixing."""
    check, changes = module.check_mode, []
    for d in p["dirs"]:
        uid, gid = _ids(d["owner"], d.get("group"), check)
        parent = os.path.dirname(d["path"].rstrip("/"))
        if parent and not os.path.isdir(parent):
            changes.append("create %s" % parent)
            if not check:
                os.makedirs(parent, 0o755)  # as ansible.builtin.file does: root's, 0755
        _ensure_dir(d["path"], uid, gid, int(str(d["mode"]), 8), check, changes)
    put_files(p["files"], check, changes)
    for path in p["absent"]:
        if os.path.lexists(path):
            changes.append("remove %s" % path)
            if not check:
                os.unlink(path)
    fix_groups = []
    for g in p["groups"]:
        try:
            grp.getgrnam(g)
        except KeyError:
            fix_groups.append(g)
    fix_users = []
    for u in p["users"]:
        try:
            pw = pwd.getpwnam(u["name"])
        except KeyError:
            fix_users.append(u["name"])
            continue
        gid = None
        if u.get("group"):
            try:
                gid = grp.getgrnam(u["group"]).gr_gid
            except KeyError:
                gid = -1
        if pw.pw_shell != u.get("shell", pw.pw_shell) or (gid is not None and pw.pw_gid != gid):
            fix_users.append(u["name"])
    return changes, fix_groups, fix_users


def put_files(files, check, changes):
    """Write each of files (path, content, owner, group, mode, force) that
    differs in content, owner or mode, atomically; its path into changes."""
    for f in files:
        path, content = f["path"], f["content"]
        uid, gid = _ids(f.get("owner") or "root", f.get("group") or "root", check)
        mode = int(str(f.get("mode") or "0644"), 8)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None and not f.get("force", True):
            continue  # never overwrite an operator's file (the gate)
        if st is not None and stat.S_ISREG(st.st_mode):
            with open(path, "rb" if isinstance(content, bytes) else "r") as fh:
                same = fh.read() == content
            if same and (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, gid, mode):
                continue
        elif st is not None:
            raise LayoutError("%s is not a regular file: tickgate will not replace it; move it away" % path)
        changes.append(path)
        if not check:
            write_atomic(path, content, mode=mode, uid=uid, gid=gid)


def private_files(p):
    """private_files with their contents (from the no_log private_contents),
    each ending in a newline."""
    out = []
    for f in p["private_files"]:
        content = p["private_contents"].get(f["path"])
        if content is None:
            raise LayoutError("private file %s has no content in private_contents" % f["path"])
        out.append(dict(f, content=content if content.endswith("\n") else content + "\n"))
    return out


def put_job_files(p, check, changes):
    """The jobs' files (job_files, contents base64) with their directories,
    as the role's copy tasks would write them. False, writing nothing, when
    one of them or its directory is anything but a regular file and a
    directory or missing (a link, a directory as dest): the copy tasks then
    handle it as ansible.builtin.file and copy do."""

    def plain(path, kind):
        return not os.path.lexists(path) or (not os.path.islink(path) and kind(path))

    for f in p["job_files"]:
        if (
            f["path"].endswith("/")
            or not plain(f["path"], os.path.isfile)
            or not plain(os.path.dirname(f["path"]), os.path.isdir)
        ):
            return False
    for d in sorted({os.path.dirname(f["path"]) for f in p["job_files"]}):
        parent = os.path.dirname(d.rstrip("/"))
        if parent and not os.path.isdir(parent):
            changes.append("create %s" % parent)
            if not check:
                os.makedirs(parent, 0o755)
        _ensure_dir(d, 0, 0, 0o755, check, changes)
    put_files([dict(f, content=base64.b64decode(p["job_contents"][f["path"]])) for f in p["job_files"]], check, changes)
    return True


# tickgate's own files in a job's state directory (everything else there
# before the trust boundary was the job's).
TICKGATE_FILES = {"state.json", "state.json.corrupt", "done", "halted"}


def _ids(owner, group, check=False):
    """The uid and gid of owner (and group, else owner's). In check mode an
    account this deploy has not created yet (its task only said it would) is
    -1: every file or directory it would own then reads as to change."""
    try:
        uid = pwd.getpwnam(owner).pw_uid
        gid = grp.getgrnam(group).gr_gid if group else pwd.getpwnam(owner).pw_gid
    except KeyError:
        if check:
            return -1, -1
        raise
    return uid, gid


def _ensure_dir(path, uid, gid, mode, check, changes):
    """Create path (one level) or fix its owner and mode, never through a link."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        changes.append("create %s" % path)
        if not check:
            os.mkdir(path, mode)
            os.chown(path, uid, gid, follow_symlinks=False)
            os.chmod(path, mode)
        return
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise LayoutError(
            "%s is not a directory (it is %s): tickgate will not use or follow it; move it away"
            % (path, "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a directory")
        )
    if (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) != (uid, gid, mode):
        changes.append(
            "fix %s (uid %d gid %d mode %04o -> uid %d gid %d mode %04o)"
            % (path, st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), uid, gid, mode)
        )
        if not check:
            os.chown(path, uid, gid, follow_symlinks=False)
            os.chmod(path, mode)


class LayoutError(Exception):
    pass


def _migrate(job, state_dir, data_dir, uid, gid, check, changes, moved):
    """Sort the entries of a state dir a job's user could write: the caller
    has already taken the directory back, so nothing can change under us.
    Nothing in it is trusted as it is: tickgate's own files are set aside to
    the job's data dir as NAME.untrusted and rebuilt from their validated
    fields (never a pid, never a control character); a marker always comes
    back (it stops the job until an operator clears it), whatever it held;
    everything else was the job's and moves to its data dir."""
    for name in sorted(os.listdir(state_dir)):
        path = os.path.join(state_dir, name)
        st = os.lstat(path)
        if name == ".state.lock" or name.startswith(".") and ".tmp-" in name:
            if stat.S_ISDIR(st.st_mode):
                continue
            changes.append("remove %s" % path)  # the helper recreates its lock; temps are leftovers
            if not check:
                os.unlink(path)
            continue
        plain = stat.S_ISREG(st.st_mode) and st.st_nlink == 1
        rebuilt = None
        if name in REBUILT and plain:
            try:
                rebuilt = REBUILT[name](job, _read_capped(path, MAX_REBUILD))
            except (OSError, ValueError):
                rebuilt = None
        if name in ("done", "halted") and rebuilt is None:
            # A marker that is not a plain file, or does not read: it still
            # stops the job.
            rebuilt = _marker(
                None, "a %s marker that could not be read (%s)" % (name, "not a plain file" if not plain else "unreadable")
            )
        # The job's data, or tickgate's file the job could have written:
        # set aside in the job's data dir.
        dest_name = name if name not in TICKGATE_FILES else name + ".untrusted"
        dest = os.path.join(data_dir, dest_name)
        if os.path.lexists(dest):
            dest = dest + ".from-state-dir"
        moved.append("%s -> %s" % (path, dest))
        if not check:
            try:
                os.rename(path, dest)
            except OSError as e:
                raise LayoutError("job %s: cannot move %s to %s (%s); move it by hand, then deploy again" % (job, path, dest, e))
        if rebuilt is not None:
            changes.append("rebuild %s from %s's validated fields" % (path, dest))
            if not check:
                write_atomic(path, rebuilt, mode=0o644, uid=uid, gid=gid)


# What is read of a file a job's user could have written, to rebuild it.
MAX_REBUILD = 1 << 20


def _read_capped(path, cap):
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ValueError("not a regular file")
        data = f.read(cap + 1)
    if len(data) > cap:
        raise ValueError("larger than %d bytes" % cap)
    return data


# The helper's rule for text a job could have written (helper/textsafe):
# C0 and C1 controls, DEL, bidi controls and line separators are escaped.
_ESC_NAMED = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


_ESC_BIDI = {0x061C, 0x200E, 0x200F, 0x2028, 0x2029} | set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def printable(s, cap=1000):
    """s with every unsafe character escaped (as \\x1b, \\u202e), at most
    cap characters; anything but a string is ""."""
    if not isinstance(s, str):
        return ""
    out = []
    for ch in s[:cap]:
        o = ord(ch)
        if ch in _ESC_NAMED:
            out.append(_ESC_NAMED[ch])
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        elif 0x80 <= o <= 0x9F or o in _ESC_BIDI:
            out.append("\\u%04x" % o)
        elif 0xD800 <= o <= 0xDFFF:
            out.append("\\ufffd")
        else:
            out.append(ch)
    return "".join(out)


def _time(v):
    """An RFC 3339 time as the helper writes it, or None."""
    if not isinstance(v, str) or len(v) > 40:
        return None
    try:
        t = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        return None
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _count(v, top=10**12):
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= top else 0


_RESULTS = ("success", "failed", "skipped", "done", "halted", "interrupted")


_LOCK_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,199}$")


_RUN_ID_RE = re.compile(r"^[0-9a-f]{1,32}$")


def _run(r):
    """One run (the latest tick, the last run, a history entry) from its
    validated fields; a run recorded as running is interrupted now."""
    if not isinstance(r, dict):
        return None
    result = r.get("result")
    reason = printable(r.get("reason"))
    if result == "running":
        result, reason = "interrupted", "recorded as running when tickgate was upgraded"
    elif result not in _RESULTS:
        return None
    code = r.get("exit_code")
    dur = r.get("duration_seconds")
    out = {
        "run_id": r.get("run_id") if isinstance(r.get("run_id"), str) and _RUN_ID_RE.match(r["run_id"]) else "",
        "result": result,
        "reason": reason,
        "started_at": _time(r.get("started_at")),
        "finished_at": _time(r.get("finished_at")),
        "duration_seconds": (
            float(dur) if isinstance(dur, (int, float)) and not isinstance(dur, bool) and 0 <= dur < 10**10 else 0
        ),
        "exit_code": code if isinstance(code, int) and not isinstance(code, bool) and 0 <= code <= 255 else None,
    }
    if isinstance(r.get("attempt"), int) and not isinstance(r["attempt"], bool) and 0 < r["attempt"] <= 1000:
        out["attempt"] = r["attempt"]
    return out


def rebuild_state(job, data):
    """state.json rebuilt from the validated fields of a file the job's user
    could have written: the counters, the last success, the latest tick and
    run, the history; no pid, no schedule cache (the next tick asks
    systemd again), every text escaped. Raises ValueError when it does not
    parse: it is then only set aside, and the job starts a new record."""
    doc = json.loads(data.decode("utf-8", "replace"))
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    lock = doc.get("lock") if isinstance(doc.get("lock"), str) and _LOCK_RE.match(doc["lock"]) else job
    out = {"job": job, "lock": lock}
    latest = _run(doc) or {
        "run_id": "",
        "result": "",
        "reason": "",
        "started_at": None,
        "finished_at": None,
        "duration_seconds": 0,
        "exit_code": None,
    }
    out.update(latest)
    out["last_success_at"] = _time(doc.get("last_success_at"))
    out["consecutive_failures"] = _count(doc.get("consecutive_failures"), 10**6)
    out["pid"] = 0
    out["last_run"] = _run(doc.get("last_run"))
    skip = doc.get("last_skip")
    at = _time(skip.get("at")) if isinstance(skip, dict) else None
    out["last_skip"] = {"at": at, "reason": printable(skip.get("reason"))} if at else None
    for k in ("runs_total", "failures_total", "skips_total", "retries_total"):
        out[k] = _count(doc.get(k))
    cu = doc.get("catch_up")
    slot = _time(cu.get("slot")) if isinstance(cu, dict) else None
    if slot:
        out["catch_up"] = {"slot": slot, "reason": printable(cu.get("reason"))}
    out["updated_at"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    hist = doc.get("history") if isinstance(doc.get("history"), list) else []
    runs = [r for r in (_run(x) for x in hist[-1000:]) if r is not None]
    if runs:
        out["history"] = runs  # the last key, as the helper keeps it
    return json.dumps(out, indent=2) + "\n"


def _marker(m, why=None):
    """A done/halted marker from its validated fields (it stops the job
    whatever it held)."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if why is not None or not isinstance(m, dict):
        reason = "marker from before the upgrade: " + (why or "it did not parse")
        return json.dumps({"at": now, "reason": reason, "exit_code": None, "run_id": ""}, indent=2) + "\n"
    code = m.get("exit_code")
    return (
        json.dumps(
            {
                "at": _time(m.get("at")) or now,
                "reason": printable(m.get("reason")),
                "exit_code": code if isinstance(code, int) and not isinstance(code, bool) and 0 <= code <= 255 else None,
                "run_id": m.get("run_id") if isinstance(m.get("run_id"), str) and _RUN_ID_RE.match(m["run_id"]) else "",
            },
            indent=2,
        )
        + "\n"
    )


def rebuild_marker(job, data):
    try:
        m = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        return _marker(None)
    return _marker(m)


REBUILT = {"state.json": rebuild_state, "done": rebuild_marker, "halted": rebuild_marker}


def layout(module, p):
    plans = []
    for d in p["dirs"]:
        uid, gid = _ids(d["owner"], d.get("group"), module.check_mode)
        plans.append((d["path"], uid, gid, int(str(d["mode"]), 8)))

    def apply(check):
        changes, moved = [], []
        try:
            for path, uid, gid, mode in plans:
                _ensure_dir(path, uid, gid, mode, check, changes)
            for j in p["job_dirs"]:
                _plan_job(j, check, changes, moved)
        except LayoutError as e:
            module.fail_json(msg=str(e), layout=changes, moved=moved)
        return changes, moved

    # Dry run first: if anything is to change, stop the timers before changing it.
    changes, moved = apply(True)
    if module.check_mode or not (changes or moved):
        return changes, moved
    timers = [n for n in current_units(p["unit_dir"], p["prefix"]) if n.endswith(".timer")]
    if timers:
        run(["systemctl", "stop"] + timers, check=False)
    return apply(False)


def _plan_job(j, check, changes, moved):
    sup_uid, sup_gid = _ids(j["supervisor"], j.get("group"), check)
    user_uid, user_gid = _ids(j.get("user") or "root", j.get("user_group"), check)
    state_dir, data_dir = j["state_dir"], j["data_dir"]
    _ensure_dir(data_dir, user_uid, user_gid, 0o700, check, changes)
    try:
        st = os.lstat(state_dir)
    except FileNotFoundError:
        st = None
    if (
        st is not None
        and stat.S_ISDIR(st.st_mode)
        and not stat.S_ISLNK(st.st_mode)
        and (st.st_uid, st.st_gid) != (sup_uid, sup_gid)
    ):
        # Take the directory back first: from here on its old owner can
        # neither add, remove nor swap an entry while we sort them.
        _ensure_dir(state_dir, sup_uid, sup_gid, 0o755, check, changes)
        _migrate(j["job"], state_dir, data_dir, sup_uid, sup_gid, check, changes, moved)
        return
    _ensure_dir(state_dir, sup_uid, sup_gid, 0o755, check, changes)
