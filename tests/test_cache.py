"""The summary cache: where it lives, that a warm run hits it, and that it survives abuse
(corrupted entries, two scans at once) without ever changing the results. Also `--jobs`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_cli import MARKER_CATALOG, MarkerAnalyzer, cli_command, run_cli, write
from test_discovery import git, git_repo

from backend_audit.cache import MAGIC, SummaryCache, content_key, decode_entry, encode_entry
from backend_audit.catalog import load_catalog
from backend_audit.engine import ScanOptions, scan

CACHE = ".backend_audit_cache"


def project(root: Path, n: int = 30) -> Path:
    for i in range(n):
        write(root, f"pkg/mod{i}.py", f"""
            def view{i}(rows):
                for row in rows:
                    flagme(row, {i})
                return {i}
        """)
    write(root, "pkg/__init__.py", "")
    write(root, "db/schema.sql", "create table t (id int);\n")
    write(root, "pkg/templates/page.html", "{% for x in xs %}{{ x.name }}{% endfor %}\n")
    return root


def json_scan(root: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    proc = run_cli([".", "--format", "json", "-q", *args], root, env=env)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def scan_in_process(monkeypatch):
    """The CLI in this process: the cache key's code digest is computed once per process, so a
    sequence of runs is not disturbed by edits to the package made meanwhile (during development)."""
    from click.testing import CliRunner

    from backend_audit.cli import main

    monkeypatch.delenv("BACKEND_AUDIT_CACHE_DIR", raising=False)

    def _scan(root: Path, *args: str, env: dict[str, str] | None = None) -> dict:
        monkeypatch.chdir(root)
        result = CliRunner().invoke(main, [".", "--format", "json", "-q", *args], env=env, catch_exceptions=False)
        assert result.exit_code in (0, 1), result.output
        return json.loads(result.stdout)

    return _scan


def entries(cache_dir: Path) -> list[Path]:
    """The per-file summary entries (not the whole-project result entry)."""
    return sorted(p for p in cache_dir.rglob("*") if p.is_file() and p.parent.parent.name.startswith("v")
                  and not p.name.startswith("project-"))


def cached_keys(cache_dir: Path) -> set[str]:
    """Every per-file summary the cache holds: entry files and entries inside pack files."""
    from backend_audit.cache import _read_pack_index

    keys = {p.name for p in entries(cache_dir) if not p.name.endswith(".pack")}
    for pack in cache_dir.rglob("*.pack"):
        keys.update(_read_pack_index(pack))
    return keys


def project_entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.rglob("project-*"))


def comparable(doc: dict) -> tuple:
    return (doc["findings"], doc["errors"], doc["stats"]["files"])


def test_cache_lives_at_the_scanned_root_and_a_warm_run_hits(tmp_path, scan_in_process):
    project(tmp_path)
    cold = scan_in_process(tmp_path)
    assert cold["stats"]["cache_hits"] == 0 and cold["stats"]["cache_misses"] == 33
    cache_dir = tmp_path / CACHE
    assert (cache_dir / ".gitignore").read_text() == "*\n"
    assert (cache_dir / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert len(cached_keys(cache_dir)) == 33
    warm = scan_in_process(tmp_path)
    assert warm["stats"]["cache_hits"] == 33 and warm["stats"]["cache_misses"] == 0
    assert comparable(warm) == comparable(cold)
    # an edited file misses, the others still hit
    write(tmp_path, "pkg/mod3.py", "def changed():\n    return 3\n")
    third = scan_in_process(tmp_path)
    assert (third["stats"]["cache_hits"], third["stats"]["cache_misses"]) == (32, 1)
    # the cache folder is never scanned itself
    assert all(not e["path"].startswith(CACHE) for e in third["errors"])


def test_cache_dir_option_environment_and_no_cache(tmp_path, scan_in_process):
    root = project(tmp_path / "proj", n=3)
    elsewhere = tmp_path / "cache-a"
    scan_in_process(root, "--cache-dir", str(elsewhere))
    assert entries(elsewhere) and not (root / CACHE).exists()
    env_dir = tmp_path / "cache-b"
    scan_in_process(root, env={"BACKEND_AUDIT_CACHE_DIR": str(env_dir)})
    assert entries(env_dir) and not (root / CACHE).exists()
    # --cache-dir wins over the environment
    scan_in_process(root, "--cache-dir", str(tmp_path / "cache-c"), env={"BACKEND_AUDIT_CACHE_DIR": str(tmp_path / "cache-d")})
    assert (tmp_path / "cache-c").exists() and not (tmp_path / "cache-d").exists()
    scan_in_process(root, "--no-cache")
    assert not (root / CACHE).exists()
    # a cache folder that cannot be created slows the run down but never fails it
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    doc = scan_in_process(root, "--cache-dir", str(blocker / "cache"))
    assert doc["stats"]["files"] == 6


def test_cache_is_not_committed_in_a_git_repository(tmp_path, scan_in_process):
    repo = git_repo(tmp_path / "repo")
    project(repo, n=2)
    scan_in_process(repo)
    scan_in_process(repo)
    status = git(repo, "status", "--porcelain", "--untracked-files=all")
    assert CACHE not in status and "pkg/mod0.py" in status


def test_corrupted_or_truncated_entries_are_ignored_and_rebuilt(tmp_path, scan_in_process):
    project(tmp_path)
    cold = scan_in_process(tmp_path, "--jobs", "1")  # in-process: one entry file per source file
    files = entries(tmp_path / CACHE)
    # the whole-project entry first: damaged, it is a miss and the per-file entries are used
    for p in project_entries(tmp_path / CACHE):
        p.write_bytes(p.read_bytes()[:-7])
    only_project = scan_in_process(tmp_path)
    assert comparable(only_project) == comparable(cold)
    assert (only_project["stats"]["cache_hits"], only_project["stats"]["cache_misses"]) == (33, 0)
    for p in project_entries(tmp_path / CACHE):
        p.write_bytes(b"junk")
    files[0].write_bytes(files[0].read_bytes()[:20])  # truncated
    files[1].write_bytes(b"garbage that is not an entry")
    blob = bytearray(files[2].read_bytes())
    blob[-5] ^= 0xFF  # one flipped bit in the payload
    files[2].write_bytes(bytes(blob))
    files[3].write_bytes(b"")  # empty
    files[4].write_bytes(MAGIC + b"\0" * 16 + b"not a pickle")  # bad checksum
    again = scan_in_process(tmp_path)
    assert comparable(again) == comparable(cold)
    assert (again["stats"]["cache_hits"], again["stats"]["cache_misses"]) == (28, 5)
    healed = scan_in_process(tmp_path)
    assert healed["stats"]["cache_hits"] == 33
    assert not [p for p in (tmp_path / CACHE).rglob(".tmp-*")]


def test_a_pack_written_by_a_parallel_cold_run_serves_later_runs_and_survives_damage(tmp_path, scan_in_process):
    project(tmp_path)
    cold = scan_in_process(tmp_path, "--jobs", "2")
    packs = list((tmp_path / CACHE).rglob("*.pack"))
    assert len(packs) == 1 and len(cached_keys(tmp_path / CACHE)) == 33
    for p in project_entries(tmp_path / CACHE):
        p.unlink()
    from_pack = scan_in_process(tmp_path)
    assert comparable(from_pack) == comparable(cold)
    assert (from_pack["stats"]["cache_hits"], from_pack["stats"]["cache_misses"]) == (33, 0)
    # one flipped byte inside the last entry, then the pack cut short: those entries are misses
    for p in project_entries(tmp_path / CACHE):
        p.unlink()
    blob = bytearray(packs[0].read_bytes())
    blob[-3] ^= 0xFF
    packs[0].write_bytes(bytes(blob))
    damaged = scan_in_process(tmp_path)
    assert comparable(damaged) == comparable(cold)
    assert damaged["stats"]["cache_misses"] == 1
    for p in project_entries(tmp_path / CACHE):
        p.unlink()
    packs[0].write_bytes(packs[0].read_bytes()[:40])  # the index itself is cut: its entries all miss
    rebuilt = scan_in_process(tmp_path, "--jobs", "2")
    # (the entry rebuilt by the previous run is an entry file of its own and still hits)
    assert comparable(rebuilt) == comparable(cold) and rebuilt["stats"]["cache_misses"] == 32


def test_entry_with_valid_checksum_but_wrong_type_is_ignored(tmp_path, scan_in_process):
    """An entry that decodes to something else than a summary (another build's data) is a miss."""
    project(tmp_path, n=1)
    scan_in_process(tmp_path)
    for entry in entries(tmp_path / CACHE) + project_entries(tmp_path / CACHE):
        payload = encode_entry({"not": "a summary"})
        import hashlib

        entry.write_bytes(MAGIC + hashlib.blake2b(payload, digest_size=16).digest() + payload)
    doc = scan_in_process(tmp_path)
    assert doc["stats"]["cache_hits"] == 0 and doc["stats"]["files"] == 4


def test_decode_entry_rejects_damage():
    payload = encode_entry({"x": 1})
    import hashlib

    good = MAGIC + hashlib.blake2b(payload, digest_size=16).digest() + payload
    assert decode_entry(good) == {"x": 1}
    for bad in (b"", MAGIC, good[:-1], good[:-1] + bytes([good[-1] ^ 1]), b"X" + good[1:]):
        assert decode_entry(bad) is None


def test_cache_key_depends_on_kind_and_bytes(tmp_path):
    assert content_key("python", b"x = 1\n") != content_key("sql", b"x = 1\n")
    assert content_key("python", b"x = 1\n") != content_key("python", b"x = 2\n")
    a = SummaryCache(tmp_path, "1.0", "aaa")
    b = SummaryCache(tmp_path, "1.0", "bbb")  # another catalog never reads a's entries
    a.put_encoded("k" * 40, encode_entry("v"))
    assert a.get("k" * 40) == "v" and b.get("k" * 40) is None


def test_two_scans_at_once_share_the_cache_safely(tmp_path):
    project(tmp_path, n=80)
    env = {k: v for k, v in os.environ.items() if k not in ("BACKEND_AUDIT_CACHE_DIR", "CI")}
    cmd = [*cli_command(), ".", "--format", "json", "-q", "--jobs", "2"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    docs = []
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode in (0, 1) and "Traceback" not in err, err
        docs.append(json.loads(out))
    assert comparable(docs[0]) == comparable(docs[1]) == comparable(docs[2])
    warm = json_scan(tmp_path)
    assert warm["stats"]["cache_hits"] == 83 and comparable(warm) == comparable(docs[0])
    assert not [p for p in (tmp_path / CACHE).rglob(".tmp-*")]


def test_jobs_2_and_jobs_1_give_identical_findings(tmp_path):
    project(tmp_path, n=40)
    catalog_file = write(tmp_path, "marker_rules.toml", MARKER_CATALOG)
    catalog = load_catalog((str(catalog_file),))
    docs = []
    for jobs in (1, 2):
        result = scan(ScanOptions(paths=[str(tmp_path)], use_cache=False, jobs=jobs), catalog,
                      analyzers=[MarkerAnalyzer()])
        docs.append(([f.to_json() for f in result.findings], [e.to_json() for e in result.errors]))
    assert len(docs[0][0]) == 40
    assert docs[0] == docs[1]
    # and the real analyzers through the command line, cold, with and without a pool
    one = json_scan(tmp_path, "--no-cache", "--jobs", "1")
    two = json_scan(tmp_path, "--no-cache", "--jobs", "2")
    assert comparable(one) == comparable(two)


def test_old_version_folders_are_pruned(tmp_path):
    import time

    base = tmp_path / "cache"
    for i in range(5):
        old = base / f"v0.0.{i}-old-abc" / "ab"
        old.mkdir(parents=True)
        (old / "ab123").write_bytes(b"x")
        os.utime(old.parent, (time.time() - 1000 + i, time.time() - 1000 + i))
    unrelated = base / "notes"
    unrelated.mkdir()
    cache = SummaryCache(base, "9.9", "cat")
    cache.put_encoded("ab" + "0" * 38, encode_entry("v"))
    names = sorted(p.name for p in base.iterdir() if p.is_dir())
    # the current folder, the two most recently used others, and what is not ours
    assert names == ["notes", "v0.0.3-old-abc", "v0.0.4-old-abc", "v9.9-cat"]
    assert cache.get("ab" + "0" * 38) == "v"
    assert (base / ".gitignore").read_text() == "*\n"


def test_an_edit_rescans_one_file_and_gives_what_a_full_scan_gives(tmp_path, scan_in_process):
    """After an edit most summaries come from the cache and one is fresh; the findings must be
    exactly those of a scan without any cache (order of arrival must not matter)."""
    import shutil

    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    root = tmp_path / "shop"
    shutil.copytree(fixtures / "example_shop", root)
    first = scan_in_process(root, "--no-llm")
    edited = sorted(root.rglob("views.py"))[0]
    edited.write_text(edited.read_text() + "\n# edited\n")
    incremental = scan_in_process(root, "--no-llm")
    assert incremental["stats"]["cache_misses"] == 1
    full = scan_in_process(root, "--no-llm", "--no-cache")
    assert first["findings"] and incremental["findings"] == full["findings"]
