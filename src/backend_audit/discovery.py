"""Find the files to scan: Python sources, `.sql` files and templates.

Inside a git work tree, git decides what is ignored (`git ls-files --cached --others
--exclude-standard`); elsewhere a walk skips the usual non-source folders. Problems with single
files (unreadable, a symlink loop, too large) become diagnostics; the scan goes on.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from backend_audit.findings import Diagnostic

DEFAULT_EXCLUDES = (
    ".git", ".hg", ".svn", ".venv", "venv", "env", ".env", "virtualenv", "node_modules", "build", "dist",
    "__pycache__", "site-packages", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache",
    ".backend_audit_cache", ".eggs", "*.egg-info",
)
TEMPLATE_SUFFIXES = (".html", ".jinja", ".jinja2", ".j2", ".txt", ".htm", ".djhtml")
DEFAULT_MAX_BYTES = 2 * 1024 * 1024


class UsageError(Exception):
    """Bad input from the user: the CLI prints it and exits with code 2."""


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute
    rel: str  # relative to the root, `/` separators
    kind: str  # "python", "sql" or "template"


@dataclass
class Discovery:
    root: Path
    files: list[SourceFile] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def kind_of(rel: str) -> str | None:
    lower = rel.lower()
    if lower.endswith((".py", ".pyi")) and not lower.endswith(".pyi"):
        return "python"
    if lower.endswith(".sql"):
        return "sql"
    if lower.endswith(TEMPLATE_SUFFIXES):
        parts = lower.split("/")
        if lower.endswith((".jinja", ".jinja2", ".j2")) or "templates" in parts[:-1] or "jinja2" in parts[:-1]:
            return "template"
    return None


@lru_cache(maxsize=32)
def _exclusion_matcher(patterns: tuple[str, ...]) -> tuple[frozenset[str], tuple[re.Pattern, ...], tuple[tuple[str, re.Pattern], ...]]:
    """Split patterns once: plain folder/file names (a set lookup), name globs, and path globs."""
    names: set[str] = set()
    globs: list[re.Pattern] = []
    paths: list[tuple[str, re.Pattern]] = []
    for pat in patterns:
        pat = pat.rstrip("/")
        if "/" in pat:
            paths.append((pat, re.compile(fnmatch.translate(pat))))
        elif any(c in pat for c in "*?["):
            globs.append(re.compile(fnmatch.translate(pat)))
        else:
            names.add(pat)
    return frozenset(names), tuple(globs), tuple(paths)


def shown(rel: str) -> str:
    """A path fit for output: bytes of a file name that are not UTF-8 (kept by the OS layer as
    lone surrogates, which no encoder accepts) become `\\xNN` escapes."""
    try:
        rel.encode("utf-8")
        return rel
    except UnicodeEncodeError:
        return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _excluded(rel: str, patterns: tuple[str, ...]) -> bool:
    """True when any part of `rel` matches a name pattern, or `rel` (or a parent) a path pattern."""
    names, globs, paths = _exclusion_matcher(patterns)
    parts = rel.split("/")
    if not names.isdisjoint(parts):
        return True
    if globs and any(g.match(part) for g in globs for part in parts):
        return True
    for pat, rx in paths:
        if rx.match(rel) or rel.startswith(pat + "/") or any(rx.match("/".join(parts[:i])) for i in range(1, len(parts))):
            return True
    return False


def common_root(paths: list[Path]) -> Path:
    absolute = [Path(os.path.abspath(p)) for p in paths]
    return Path(os.path.commonpath([str(p if p.is_dir() else p.parent) for p in absolute]))


def _git_files(directory: Path) -> list[str] | None:
    """Files git would track below `directory` (relative to it), or None outside a work tree."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(directory), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return [p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


def discover(paths: list[str], exclude: tuple[str, ...] = DEFAULT_EXCLUDES,
             max_bytes: int = DEFAULT_MAX_BYTES, use_git: bool = True) -> Discovery:
    if not paths:
        paths = ["."]
    given = [Path(p) for p in paths]
    for p in given:
        if not p.exists() and not p.is_symlink():
            raise UsageError(f"path does not exist: {p}")
    root = common_root(given)
    found = Discovery(root=root)
    seen: set[str] = set()

    def add(abs_path: Path, explicit: bool, rel: str | None = None) -> None:
        if rel is None:
            rel = shown(os.path.relpath(abs_path, root).replace(os.sep, "/"))
        if rel in seen:
            return
        kind = kind_of(rel)
        if kind is None:
            if explicit:  # named on the command line: say why nothing happens
                seen.add(rel)
                found.diagnostics.append(Diagnostic(
                    rel, "unsupported-file", "not a Python, SQL or template file; skipped"))
            return
        if not explicit and _excluded(rel, exclude):
            return
        seen.add(rel)
        try:
            st = os.stat(abs_path)
        except RuntimeError:
            found.diagnostics.append(Diagnostic(rel, "symlink-loop", "symbolic link loop; skipped"))
            return
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                found.diagnostics.append(Diagnostic(rel, "symlink-loop", "symbolic link loop; skipped"))
            elif exc.errno == errno.ENOENT and abs_path.is_symlink():
                found.diagnostics.append(Diagnostic(
                    rel, "unreadable", f"broken symbolic link to {os.readlink(abs_path)}; skipped"))
            else:
                found.diagnostics.append(Diagnostic(rel, "unreadable", f"cannot read: {exc.strerror or exc}"))
            return
        if not stat.S_ISREG(st.st_mode):
            what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a pipe, socket or device)"
            found.diagnostics.append(Diagnostic(rel, "unreadable", f"{what}; skipped"))
            return
        if st.st_size > max_bytes:
            found.diagnostics.append(Diagnostic(
                rel, "too-large", f"{st.st_size} bytes is over the {max_bytes}-byte limit (max-file-bytes); skipped"))
            return
        found.files.append(SourceFile(abs_path, rel, kind))

    for p in given:
        if not p.is_dir():  # a file, a pipe, a broken or looping link: `add` says which
            add(Path(os.path.abspath(p)), explicit=True)
            continue
        directory = Path(os.path.abspath(p))
        listed = _git_files(directory) if use_git else None
        if listed:  # (an empty answer: a folder git ignores as a whole, named on purpose: walk it)
            for rel_to_dir in listed:
                abs_path = directory / rel_to_dir
                rel_root = os.path.relpath(abs_path, root).replace(os.sep, "/")
                if kind_of(rel_root) is None or _excluded(rel_root, exclude):
                    continue
                if abs_path.is_dir() and not abs_path.is_symlink():
                    continue  # a submodule
                if not os.path.lexists(abs_path):
                    continue  # tracked but deleted in the work tree
                add(abs_path, explicit=False)
        else:
            _walk(directory, root, exclude, add, found)
    found.files.sort(key=lambda f: f.rel)
    return found


def _rel_join(rel_dir: str, name: str) -> str:
    """`name` below the relative folder `rel_dir` ("." is the root)."""
    if not name:
        return rel_dir
    return name if rel_dir == "." else f"{rel_dir}/{name}"


def _walk(directory: Path, root: Path, exclude: tuple[str, ...], add, found: Discovery) -> None:
    """Walk without git. A link to a folder inside the scanned tree is not followed (its files
    are scanned under their real name); one that leads back to its own ancestor is reported as a
    loop. Links leading outside are followed, with a guard against cycles out there."""
    visited: set[tuple[int, int]] = set()
    real_top = os.path.realpath(directory)
    top = str(directory)
    rel_top = shown(os.path.relpath(top, root).replace(os.sep, "/"))

    def onerror(exc: OSError) -> None:
        rel = shown(os.path.relpath(exc.filename or str(directory), root).replace(os.sep, "/"))
        found.diagnostics.append(Diagnostic(rel, "unreadable", f"cannot list folder: {exc.strerror or exc}"))

    for dirpath, dirnames, filenames in os.walk(directory, onerror=onerror, followlinks=True):
        try:
            st = os.stat(dirpath)
            key = (st.st_dev, st.st_ino)
        except OSError:
            dirnames[:] = []
            continue
        # os.walk joins names onto `top`: the relative folder is `rel_top` plus what it appended
        rel_dir = _rel_join(rel_top, shown(dirpath[len(top):].lstrip(os.sep).replace(os.sep, "/")))
        if key in visited:
            found.diagnostics.append(Diagnostic(rel_dir, "symlink-loop", "symbolic link loop; folder skipped"))
            dirnames[:] = []
            continue
        visited.add(key)
        keep = []
        for d in sorted(dirnames):
            rel = _rel_join(rel_dir, d)
            if _excluded(rel, exclude):
                continue
            full = os.path.join(dirpath, d)
            if os.path.islink(full):
                real = os.path.realpath(full)
                if real == real_top or real.startswith(real_top + os.sep):
                    real_parent = os.path.realpath(dirpath)
                    if real_parent == real or real_parent.startswith(real + os.sep):
                        found.diagnostics.append(Diagnostic(
                            rel, "symlink-loop", "symbolic link loop (points to its own parent folder); skipped"))
                    continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = _rel_join(rel_dir, shown(name))
            if kind_of(rel) is None or _excluded(rel, exclude):
                continue
            add(Path(dirpath, name), explicit=False, rel=rel)
