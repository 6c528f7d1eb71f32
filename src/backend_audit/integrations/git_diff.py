"""`--diff-base REF`: keep only findings on lines added or changed since the merge base with REF.

Asks real git: `git merge-base REF HEAD`, then `git diff -U0 -M <base>` of the working tree (so
uncommitted edits count as changes, and a renamed file contributes only the lines that changed),
plus untracked files that are not ignored (every line of a new file is new). A finding is kept
when its line is one of the added lines of its file.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from backend_audit.findings import Finding

_HUNK = re.compile(rb"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
ALL_LINES = None  # marker: every line of the file is new


class GitDiffError(Exception):
    """git is missing, the folder is not a work tree, or the ref is unknown (exit code 2)."""


def _git(cwd: Path, *args: str) -> bytes:
    try:
        proc = subprocess.run(["git", "-c", "core.quotePath=false", *args], cwd=cwd, capture_output=True,
                              timeout=120)
    except FileNotFoundError:
        raise GitDiffError("--diff-base needs git, which is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitDiffError(f"git {args[0]} took too long") from None
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitDiffError(message[-1] if message else f"git {args[0]} failed")
    return proc.stdout


def _unquote(path: bytes) -> bytes:
    """git's C-style quoting of unusual file names ("a\\tb.py")."""
    if not path.startswith(b'"'):
        return path
    body, out, i = path[1:-1], bytearray(), 0
    simple = {ord("n"): 10, ord("t"): 9, ord('"'): 34, ord("\\"): 92, ord("a"): 7, ord("b"): 8,
              ord("f"): 12, ord("r"): 13, ord("v"): 11}
    while i < len(body):
        c = body[i]
        if c == 92 and i + 1 < len(body):
            nxt = body[i + 1]
            if 48 <= nxt <= 55:
                out.append(int(body[i + 1:i + 4], 8))
                i += 4
                continue
            out.append(simple.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return bytes(out)


def parse_diff(diff: bytes) -> dict[str, set[int]]:
    """Added line numbers (new side) per file path, from `git diff -U0` output."""
    changed: dict[str, set[int]] = {}
    current: set[int] | None = None
    for line in diff.split(b"\n"):
        if line.startswith(b"+++ "):
            target = line[4:].rstrip(b"\r")
            if target == b"/dev/null":
                current = None  # a deleted file
                continue
            name = _unquote(target)
            if name.startswith(b"b/"):
                name = name[2:]
            current = changed.setdefault(name.decode("utf-8", "surrogateescape"), set())
        elif line.startswith(b"@@") and current is not None:
            m = _HUNK.match(line)
            if m:
                start = int(m.group(1))
                count = 1 if m.group(2) is None else int(m.group(2))
                current.update(range(start, start + count))
    return changed


def changed_lines(root: str | Path, ref: str) -> tuple[Path, dict[str, set[int] | None]]:
    """(the work tree's top folder, {path relative to it: added lines, or None for a new file})."""
    root = Path(root)
    if not ref or ref.startswith("-"):
        raise GitDiffError(f"--diff-base: {ref!r} is not a git ref")
    try:
        top = Path(_git(root, "rev-parse", "--show-toplevel").decode("utf-8", "surrogateescape").strip())
    except GitDiffError:
        raise GitDiffError(f"--diff-base needs a git work tree, and {root} is not in one") from None
    try:
        _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except GitDiffError:
        if ref == "HEAD" and not _has_commits(top):
            # the first commit of a new repository (the pre-commit hook): every line is new
            listed = _git(top, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
            return top, {n.decode("utf-8", "surrogateescape"): ALL_LINES for n in listed.split(b"\0") if n}
        raise GitDiffError(f"--diff-base: unknown git ref {ref!r}") from None
    try:
        base = _git(top, "merge-base", ref, "HEAD").decode().strip()
    except GitDiffError as exc:
        raise GitDiffError(f"--diff-base: no merge base between {ref!r} and HEAD ({exc})") from None
    diff = _git(top, "diff", "-U0", "-M", "--no-color", "--no-ext-diff", "--no-textconv",
                "--ignore-submodules", "--src-prefix=a/", "--dst-prefix=b/", base, "--")
    result: dict[str, set[int] | None] = dict(parse_diff(diff))
    untracked = _git(top, "ls-files", "-z", "--others", "--exclude-standard")
    for name in untracked.split(b"\0"):
        if name:
            result[name.decode("utf-8", "surrogateescape")] = ALL_LINES
    return top, result


def _has_commits(top: Path) -> bool:
    try:
        _git(top, "rev-parse", "--verify", "--quiet", "HEAD")
        return True
    except GitDiffError:
        return False


def filter_to_diff(findings: list[Finding], root: str | Path, ref: str) -> list[Finding]:
    return keep_changed(findings, root, *changed_lines(root, ref))


def keep_changed(findings: list[Finding], root: str | Path, top: Path,
                 changed: dict[str, set[int] | None]) -> list[Finding]:
    """The findings on added lines (`root` is the scanned folder findings' paths are relative to)."""
    real_top = os.path.realpath(top)
    real_root = os.path.realpath(root)
    prefix = os.path.relpath(real_root, real_top).replace(os.sep, "/")
    prefix = "" if prefix == "." else prefix + "/"
    kept = []
    for f in findings:
        key = prefix + f.path
        if key not in changed:
            continue
        lines = changed[key]
        if lines is ALL_LINES or f.line in lines:
            kept.append(f)
    return kept
