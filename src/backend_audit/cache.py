"""Content-addressed cache of per-file summaries.

An entry is keyed by the file's kind and bytes, in a folder named after the tool version and the
catalog digest, so a new version or a changed catalog never reads stale entries. Entries are
written to a temporary file and renamed into place (atomic on POSIX), so concurrent runs can only
ever see whole entries; each carries a checksum, so a truncated or corrupted entry is ignored and
rebuilt.

A large batch of new entries (a cold scan of a big project) is written as one *pack* file under
`packs/` instead of a thousand small files: an index of key -> (offset, length) followed by the
entries, each still checksummed. Packs are immutable and renamed into place whole; only the most
recent `MAX_PACKS` are kept (an entry in a deleted pack is a cache miss and is rebuilt).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import threading
from itertools import count
from pathlib import Path
from typing import Any

MAGIC = b"BACB1"
PACK_MAGIC = b"BACP1"
MAX_PACKS = 16
_SEQUENCE = count()
#: cache folders of other versions/builds/catalogs kept besides the current one
KEEP_OTHER_VERSIONS = 2
CACHEDIR_TAG = "Signature: 8a477f597d28d172789f06886806bc55\n# backend-audit cache; safe to delete.\n"


#: bytes before the pickle in a stored entry: magic and checksum (see `seal`)
SEAL_SIZE = len(MAGIC) + 16


def seal(payload: bytes) -> bytes:
    """A stored entry: magic, checksum, then the pickle. Workers seal what they send, so the
    parent writes a cold scan's pack without hashing 15 MB itself."""
    return MAGIC + hashlib.blake2b(payload, digest_size=16).digest() + payload


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
        self._packs: dict[str, tuple[Path, int, int]] | None = None

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / key

    def _packed(self, key: str) -> bytes | None:
        """The entry for `key` from a pack file, if any pack has it."""
        if self._packs is None:
            self._packs = {}
            try:
                packs = sorted((self.directory / "packs").glob("*.pack"), key=lambda p: p.stat().st_mtime)
            except OSError:
                packs = []
            for pack in packs:  # newest last: its entries win
                for k, (offset, length) in _read_pack_index(pack).items():
                    self._packs[k] = (pack, offset, length)
        where = self._packs.get(key)
        if where is None:
            return None
        pack, offset, length = where
        try:
            with open(pack, "rb") as fh:
                fh.seek(offset)
                blob = fh.read(length)
        except OSError:
            return None
        return blob if len(blob) == length else None

    def get(self, key: str) -> Any | None:
        try:
            blob = self._path(key).read_bytes()
        except OSError:
            blob = self._packed(key)
        if blob is None:
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
            _write_whole(target, (seal(payload),))
        except OSError:
            self.write_errors += 1  # a read-only cache folder slows the next run; it never fails this one

    def put_many(self, entries: list[tuple[str, bytes]]) -> None:
        """Store many sealed entries (`seal`) as one pack file (one write instead of many)."""
        if not entries:
            return
        try:
            if not self._ready:
                self.prepare()
            packs = self.directory / "packs"
            packs.mkdir(exist_ok=True)
            index: dict[str, tuple[int, int]] = {}  # offsets from the start of the entries
            offset = 0
            for key, blob in entries:
                index[key] = (offset, len(blob))
                offset += len(blob)
            header = pickle.dumps(index, protocol=pickle.HIGHEST_PROTOCOL)
            head = PACK_MAGIC + hashlib.blake2b(header, digest_size=16).digest() + len(header).to_bytes(8, "big")
            name = f"{os.getpid()}-{threading.get_ident()}-{next(_SEQUENCE)}-{hashlib.blake2b(header, digest_size=6).hexdigest()}"
            _write_whole(packs / f"{name}.pack", (head, header, *(blob for _, blob in entries)))
            old = sorted(packs.glob("*.pack"), key=lambda p: p.stat().st_mtime, reverse=True)[MAX_PACKS:]
            for pack in old:
                try:
                    pack.unlink()
                except OSError:
                    pass
        except OSError:
            self.write_errors += 1

    def prepare(self) -> None:
        """Create the folder and mark it (once per run)."""
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


def _write_whole(target: Path, chunks) -> None:
    """Write `chunks` to a temporary file beside `target` and rename it into place: readers in
    other processes see the old file or the whole new one, never a part. On failure the temporary
    file is removed and the error raised."""
    # a name no other process or thread uses (pid + thread + counter): cheaper than mkstemp's retries
    tmp = target.parent / f".tmp-{os.getpid()}-{threading.get_ident()}-{next(_SEQUENCE)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_new(path: Path, text: str) -> None:
    """Create `path` whole unless it exists."""
    if not path.exists():
        _write_whole(path, (text.encode(),))


def _read_pack_index(pack: Path) -> dict[str, tuple[int, int]]:
    """The key -> (offset, length) index of a pack; empty when the pack is damaged."""
    try:
        with open(pack, "rb") as fh:
            head = fh.read(len(PACK_MAGIC) + 24)
            if len(head) != len(PACK_MAGIC) + 24 or not head.startswith(PACK_MAGIC):
                return {}
            digest = head[len(PACK_MAGIC): len(PACK_MAGIC) + 16]
            size = int.from_bytes(head[len(PACK_MAGIC) + 16:], "big")
            header = fh.read(size)
        if len(header) != size or hashlib.blake2b(header, digest_size=16).digest() != digest:
            return {}
        index = pickle.loads(header)
        if not isinstance(index, dict):
            return {}
        start = len(PACK_MAGIC) + 24 + size
        return {k: (start + offset, length) for k, (offset, length) in index.items()}
    except Exception:
        return {}


def encode_entry(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def decode_entry(blob: bytes) -> Any | None:
    if not blob.startswith(MAGIC) or len(blob) < SEAL_SIZE:
        return None
    digest, payload = blob[len(MAGIC): SEAL_SIZE], blob[SEAL_SIZE:]
    if hashlib.blake2b(payload, digest_size=16).digest() != digest:
        return None
    try:
        return pickle.loads(payload)
    except Exception:
        return None
