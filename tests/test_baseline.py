"""`--write-baseline` / `--baseline`: accept today's findings by fingerprint, report only new ones."""

from __future__ import annotations

import json

import pytest
from test_cli import findings_of, invoke, marker_project, rules_of, run_cli, write  # noqa: F401 (fixture)

APP = '''
    def view(rows):
        for row in rows:
            flagme(row)
        blockme()
'''
SCAN = [".", "--format", "json", "--no-cache", "-q"]


def test_baseline_hides_known_findings_even_when_lines_move(tmp_path, invoke):
    marker_project(tmp_path)
    write(tmp_path, "app.py", APP)
    r = invoke([*SCAN, "--write-baseline", "audit-baseline.json"], tmp_path)
    assert r.exit_code == 0 and r.stdout == ""  # writing a baseline accepts the findings
    doc = json.loads((tmp_path / "audit-baseline.json").read_text())
    assert doc["backend_audit_baseline"] == 1
    assert sorted(e["rule"] for e in doc["findings"]) == ["BA198", "BA498"]
    assert all(len(e["fingerprint"]) >= 16 and "line" not in e for e in doc["findings"])

    r = invoke([*SCAN, "--baseline", "audit-baseline.json"], tmp_path)
    assert r.exit_code == 0 and findings_of(r) == []
    assert json.loads(r.stdout)["stats"]["baseline_hidden"] == 2

    # lines inserted above, and the function renamed elsewhere in the file: still baselined
    write(tmp_path, "app.py", '"""Docs."""\nimport os\n\n\nCONSTANT = 1\n' + APP.replace("    def view", "def view")
          .replace("\n    ", "\n"))
    r = invoke([*SCAN, "--baseline", "audit-baseline.json"], tmp_path)
    assert findings_of(r) == [], r.stdout

    # a new finding (same rule, same file) is reported, the old ones stay hidden
    write(tmp_path, "app.py", (tmp_path / "app.py").read_text() + "\n\ndef other():\n    flagme(2)\n")
    r = invoke([*SCAN, "--baseline", "audit-baseline.json"], tmp_path)
    assert r.exit_code == 1
    assert [(f["rule"], f["path"]) for f in findings_of(r)] == [("BA198", "app.py")]
    assert findings_of(r)[0]["line"] == (tmp_path / "app.py").read_text().splitlines().index("    flagme(2)") + 1


def test_baseline_from_configuration(tmp_path, invoke):
    marker_project(tmp_path, 'baseline = "ci/baseline.json"\n')
    write(tmp_path, "app.py", APP)
    (tmp_path / "ci").mkdir()
    assert invoke([*SCAN, "--write-baseline", "ci/baseline.json"], tmp_path).exit_code == 0
    r = invoke(SCAN, tmp_path)
    assert r.exit_code == 0 and findings_of(r) == []


def test_a_second_identical_finding_in_the_same_function_is_new(tmp_path, invoke):
    marker_project(tmp_path)
    write(tmp_path, "app.py", "def view():\n    flagme()\n")
    invoke([*SCAN, "--write-baseline", "b.json"], tmp_path)
    write(tmp_path, "app.py", "def view():\n    flagme()\n    flagme()\n")
    r = invoke([*SCAN, "--baseline", "b.json"], tmp_path)
    assert len(findings_of(r)) == 1


def test_write_baseline_is_atomic_and_replaces_the_old_one(tmp_path, invoke):
    marker_project(tmp_path)
    write(tmp_path, "app.py", APP)
    (tmp_path / "b.json").write_text("x" * 100_000)
    assert invoke([*SCAN, "--write-baseline", "b.json"], tmp_path).exit_code == 0
    assert len(json.loads((tmp_path / "b.json").read_text())["findings"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".b.json")) == []


@pytest.mark.parametrize("content, needle", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not a backend-audit baseline"),
    ('{"backend_audit_baseline": 99, "findings": []}', "unsupported format"),
    ('{"backend_audit_baseline": 1, "findings": {}}', "'findings' must be a list"),
    ('{"backend_audit_baseline": 1, "findings": [{"rule": "BA101"}]}', "findings[0]"),
])
def test_bad_baseline_is_a_clear_exit_2(tmp_path, content, needle):
    write(tmp_path, "app.py", "x = 1\n")
    (tmp_path / "b.json").write_text(content)
    proc = run_cli([".", "--no-cache", "-q", "--baseline", "b.json"], tmp_path)
    assert proc.returncode == 2
    assert needle in proc.stderr and "b.json" in proc.stderr
    assert proc.stdout == ""


def test_baseline_errors_for_missing_folder_and_files(tmp_path):
    write(tmp_path, "app.py", "x = 1\n")
    (tmp_path / "adir").mkdir()
    for args, needle in ((["--baseline", "nope.json"], "not found"),
                         (["--baseline", "adir"], "folder"),
                         (["--write-baseline", "missing/dir/b.json"], "does not exist")):
        proc = run_cli([".", "--no-cache", "-q", *args], tmp_path)
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
    assert not (tmp_path / "missing").exists()
