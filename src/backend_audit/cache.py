"""Content-addressed cache of per-file summaries.

An entry is keyed by the file's kind and bytes, in a folder named after the tool version and the
catalog digest, so a new version or a changed catalog never reads stale entries. Entries are
written to a temporary file and renamed into place (atomic on POSIX), so concurrent runs can only
ever see whole entries; each carries a checksum, so a truncated or corrupted entry is ignored and
rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tempfile
import threading
from itertools import count
from pathlib import Path
from typing import Any

MAGIC = b"BACB1"
_SEQUENCE = count()
#: cache folders of other versions/builds/catalogs kept besides the current one
KEEP_OTHER_VERSIONS = 2
CACHEDIR_TAG = "Signature: 8a477f597d28d172789f06886806bc55\n# backend-audit cache; safe to delete.\n"


def content_key(kind: str, data: bytes) -> str:
    return hashlib.blake2b(kind.encode() + b"\0" + data, digest_size=20).hexdigest()


class SummaryCache:
    def __init__(self, directory: Path, version: str, catalog_digest: str):
        self.base = directory
        self.directory = directory / f"v{version}-{catalog_digest}"
        self.hits = 0
        self.misses = 0
        self.write_errors = 0
        self._ready = False
        self._made: set[Path] = set()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / key

    def get(self, key: str) -> Any | None:
        try:
            blob = self._path(key).read_bytes()
        except OSError:
            self.misses += 1
            return None
        value = decode_entry(blob)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put_encoded(self, key: str, payload: bytes) -> None:
        """Store an already pickled summary (workers pickle once, for the pipe and the cache)."""
        target = self._path(key)
        parent = target.parent
        try:
            if not self._ready:
                self.prepare()
            if parent not in self._made:
                parent.mkdir(exist_ok=True)
                self._made.add(parent)
            # a name no other process or thread uses (pid + counter): cheaper than mkstemp's retries
            tmp = parent / f".tmp-{os.getpid()}-{threading.get_ident()}-{next(_SEQUENCE)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(MAGIC + hashlib.blake2b(payload, digest_size=16).digest() + payload)
                os.replace(tmp, target)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        except OSError:
            self.write_errors += 1  # a read-only cache folder slows the next run; it never fails this one

    def prepare(self) -> None:
        """Create the folder (once per run, before workers fork, so they only write entries)."""
        self._ready = True
        self.directory.mkdir(parents=True, exist_ok=True)
        # the folder marks itself: backup tools skip it (CACHEDIR.TAG), git never sees it
        _write_new(self.base / "CACHEDIR.TAG", CACHEDIR_TAG)
        _write_new(self.base / ".gitignore", "*\n")
        try:
            os.utime(self.directory)
        except OSError:
            pass
        self._prune_old_versions()

    def _prune_old_versions(self) -> None:
        """Entries of another version, build or catalog are never read again: keep the few most
        recently used (to switch back and forth between branches), delete the rest. A run that
        still uses a deleted folder only loses its cache hits; it never fails."""
        try:
            others = [p for p in self.base.iterdir()
                      if p.is_dir() and p.name.startswith("v") and p.name != self.directory.name]
            others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        except OSError:
            return
        for old in others[KEEP_OTHER_VERSIONS:]:
            shutil.rmtree(old, ignore_errors=True)


def _write_new(path: Path, text: str) -> None:
    """Create `path` whole (write a temporary file, rename it into place) unless it exists."""
    if path.exists():
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def encode_entry(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def decode_entry(blob: bytes) -> Any | None:
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 16:
        return None
    digest, payload = blob[len(MAGIC): len(MAGIC) + 16], blob[len(MAGIC) + 16:]
    if hashlib.blake2b(payload, digest_size=16).digest() != digest:
        return None
    try:
        return pickle.loads(payload)
    except Exception:
        return None
