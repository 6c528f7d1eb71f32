"""Write results to a file atomically: a failure leaves the old file (or nothing), never half.

A device, pipe or socket (`-o /dev/null`, `-o /dev/stdout`, a FIFO) is written into instead:
renaming a temporary file over it would replace `/dev/null` itself with a regular file. A
symbolic link is followed, so the file it points to is replaced and the link stays.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


class OutputError(Exception):
    pass


def _is_stream(target: Path) -> bool:
    """A device, pipe or socket: something to write into, not a file to replace."""
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _resolved(path: str | Path) -> Path:
    target = Path(path)
    return Path(os.path.realpath(target)) if target.is_symlink() else target


def check_writable(path: str | Path) -> None:
    """Fail early (before a long scan) when `path` can certainly not be written."""
    target = _resolved(path)
    if _is_stream(target):
        if not os.access(target, os.W_OK):
            raise OutputError(f"cannot write output to {path}: permission denied")
        return
    directory = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise OutputError(f"cannot write output to {target}: it is a folder")
    if not directory.is_dir():
        what = "is not a folder" if directory.exists() else "does not exist"
        raise OutputError(f"cannot write output to {target}: folder {directory} {what}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write output to {target}: folder {directory} is not writable")


def write_output(path: str | Path, text: str) -> None:
    target = _resolved(path)
    if _is_stream(target):
        try:
            with open(target, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        except OSError as exc:
            raise OutputError(f"cannot write output to {path}: {exc.strerror or exc}") from None
        return
    directory = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise OutputError(f"cannot write output to {target}: it is a folder")
    if not directory.is_dir():
        what = "is not a folder" if directory.exists() else "does not exist"
        raise OutputError(f"cannot write output to {target}: folder {directory} {what}")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write output to {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if target.exists():
            try:
                os.chmod(tmp, target.stat().st_mode & 0o7777)
            except OSError:
                pass
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OutputError(f"cannot write output to {target}: {exc.strerror or exc}") from None
