"""Find the files to scan: Python sources, `.sql` files and templates.

Inside a git work tree, git decides what is ignored (`git ls-files --cached --others
--exclude-standard`); elsewhere a walk skips the usual non-source folders. Problems with single
files (unreadable, a symlink loop, too large) become diagnostics; the scan goes on.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
from dataclasses import dataclass, field
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


def _excluded(rel: str, patterns: tuple[str, ...]) -> bool:
    parts = rel.split("/")
    for pat in patterns:
        pat = pat.rstrip("/")
        if "/" in pat:
            if fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel, pat + "/*") or rel.startswith(pat + "/"):
                return True
        elif any(fnmatch.fnmatch(part, pat) for part in parts):
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

    def add(abs_path: Path, explicit: bool) -> None:
        rel = os.path.relpath(abs_path, root).replace(os.sep, "/")
        if rel in seen:
            return
        kind = kind_of(rel)
        if kind is None:
            return
        if not explicit and _excluded(rel, exclude):
            return
        seen.add(rel)
        try:
            st = abs_path.stat()
        except RuntimeError:
            found.diagnostics.append(Diagnostic(rel, "symlink-loop", "symbolic link loop; skipped"))
            return
        except OSError as exc:
            if exc.errno == 40:  # ELOOP
                found.diagnostics.append(Diagnostic(rel, "symlink-loop", "symbolic link loop; skipped"))
            else:
                found.diagnostics.append(Diagnostic(rel, "unreadable", f"cannot read: {exc.strerror or exc}"))
            return
        if st.st_size > max_bytes:
            found.diagnostics.append(Diagnostic(
                rel, "too-large", f"{st.st_size} bytes is over the {max_bytes}-byte limit (max-file-bytes); skipped"))
            return
        found.files.append(SourceFile(abs_path, rel, kind))

    for p in given:
        if p.is_file() or (p.is_symlink() and not p.is_dir()):
            add(Path(os.path.abspath(p)), explicit=True)
            continue
        directory = Path(os.path.abspath(p))
        listed = _git_files(directory) if use_git else None
        if listed is not None:
            for rel_to_dir in listed:
                abs_path = directory / rel_to_dir
                rel_root = os.path.relpath(abs_path, root).replace(os.sep, "/")
                if kind_of(rel_root) is None or _excluded(rel_root, exclude):
                    continue
                if abs_path.is_dir() and not abs_path.is_symlink():
                    continue  # a submodule
                add(abs_path, explicit=False)
        else:
            _walk(directory, root, exclude, add, found)
    found.files.sort(key=lambda f: f.rel)
    return found


def _walk(directory: Path, root: Path, exclude: tuple[str, ...], add, found: Discovery) -> None:
    visited: set[tuple[int, int]] = set()

    def onerror(exc: OSError) -> None:
        rel = os.path.relpath(exc.filename or str(directory), root).replace(os.sep, "/")
        found.diagnostics.append(Diagnostic(rel, "unreadable", f"cannot list folder: {exc.strerror or exc}"))

    for dirpath, dirnames, filenames in os.walk(directory, onerror=onerror, followlinks=True):
        try:
            st = os.stat(dirpath)
            key = (st.st_dev, st.st_ino)
        except OSError:
            dirnames[:] = []
            continue
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        if key in visited:
            found.diagnostics.append(Diagnostic(rel_dir, "symlink-loop", "symbolic link loop; folder skipped"))
            dirnames[:] = []
            continue
        visited.add(key)
        keep = []
        for d in sorted(dirnames):
            rel = d if rel_dir == "." else f"{rel_dir}/{d}"
            if not _excluded(rel, exclude):
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if kind_of(rel) is None or _excluded(rel, exclude):
                continue
            add(Path(dirpath) / name, explicit=False)
