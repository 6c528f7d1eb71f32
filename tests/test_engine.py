"""The scan pipeline: the parallel paths give the same findings as the serial ones."""

from __future__ import annotations

from pathlib import Path

import backend_audit.engine as engine
from backend_audit.catalog import load_catalog
from backend_audit.engine import ScanOptions, scan

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _findings(project: Path, jobs: int) -> list[tuple]:
    result = scan(ScanOptions(paths=[str(project)], use_cache=False, jobs=jobs), load_catalog())
    return [(f.rule, f.path, f.line, f.column, f.message, f.fingerprint) for f in result.findings]


def test_analyzers_in_forked_workers_match_the_serial_run(monkeypatch):
    project = FIXTURES / "example_shop"
    serial = _findings(project, jobs=1)
    monkeypatch.setattr(engine, "PARALLEL_ANALYSIS_THRESHOLD", 0)
    monkeypatch.setattr(engine, "POOL_THRESHOLD", 1)
    parallel = _findings(project, jobs=2)
    assert serial and parallel == serial


def test_unchanged_project_is_served_whole_from_the_cache(tmp_path):
    project = FIXTURES / "example_shop"
    options = ScanOptions(paths=[str(project)], cache_dir=str(tmp_path), jobs=1)
    first = scan(options, load_catalog())
    second = scan(options, load_catalog())
    assert second.stats.get("project_cache") is True
    assert [f.to_json() for f in second.findings] == [f.to_json() for f in first.findings]


def _json_findings(project: Path, hash_seed: str) -> list[dict]:
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    env.pop("ANTHROPIC_API_KEY", None)
    out = subprocess.run([sys.executable, "-m", "backend_audit", str(project), "--format", "json", "--no-cache",
                          "--no-llm", "-q", "--exit-zero"], env=env, capture_output=True, text=True, check=True)
    return [{k: v for k, v in f.items()} for f in json.loads(out.stdout)["findings"]]


def test_findings_do_not_depend_on_string_hashing():
    """The same tree gives the same findings whatever order sets of strings iterate in.

    All fixture projects scanned as one tree is a hard case: several files claim the same module
    name (`library.models` in more than one project), and which one the index keeps must not
    follow the hash seed.
    """
    runs = [_json_findings(FIXTURES, seed) for seed in ("1", "2", "3")]
    assert runs[0]
    assert runs[1] == runs[0]
    assert runs[2] == runs[0]


def test_a_file_nested_too_deeply_is_a_diagnostic_and_the_scan_goes_on(tmp_path):
    """Thousands of chained operators parse (or not) but nest deeper than a recursive walk can
    follow: that file becomes a `too-complex` diagnostic; the rest of the project is analysed."""
    for n in (1500, 30000):  # deeper than the summary's recursion; deeper than the parser's
        (tmp_path / f"generated_{n}.py").write_text("def f(a):\n    return " + "+".join(["a"] * n) + "\n")
    (tmp_path / "views.py").write_text("import requests\n\ndef view():\n    return requests.get('http://x')\n")
    result = scan(ScanOptions(paths=[str(tmp_path)], use_cache=False, jobs=1), load_catalog())
    kinds = {e.path: e.kind for e in result.errors}
    assert kinds == {"generated_1500.py": "too-complex", "generated_30000.py": "too-complex"}
    assert [f.path for f in result.findings] == ["views.py"]  # BA403: no timeout
