"""The rules catalog: validation that names the file and key, user catalogs, `backend-audit rules`."""

from __future__ import annotations

import json

import pytest
from test_cli import MARKER_CATALOG, marker_project, run_cli, write

from backend_audit.catalog import CatalogError, load_catalog

GOOD_RULE = '''
[[rule]]
id = "BA197"
name = "good-rule"
category = "n-plus-one"
title = "A good rule"
severity = "low"
confidence = "medium"
description = "d"
why = "w"
fix = "f"
tradeoffs = "t"
example_bad = "b"
example_good = "g"
references = ["https://example.invalid"]
remediation = "Do {thing}."
'''


def _variant(replace: str = "", with_: str = "", extra: str = "") -> str:
    text = GOOD_RULE.replace(replace, with_) if replace else GOOD_RULE
    return text + extra


def test_builtin_catalog_loads_and_is_consistent():
    catalog = load_catalog()
    assert catalog.digest
    for rule_id, doc in catalog.rules.items():
        assert rule_id == doc.id
        assert doc.category == {"1": "n-plus-one", "2": "missing-index", "3": "unvalidated-input",
                                "4": "blocking-io"}[rule_id[2]]


def test_user_catalog_adds_rules_and_data(tmp_path):
    rules_dir = tmp_path / "builtin"
    write(rules_dir, "base.toml", '[catalog.blocking]\ncalls = ["time.sleep"]\n[catalog.blocking.alternatives]\n'
                                  '"time.sleep" = "asyncio.sleep"\n')
    user = write(tmp_path, "mine.toml", GOOD_RULE + '\n[catalog.blocking]\ncalls = ["mylib.wait"]\n'
                                                   '[catalog.blocking.alternatives]\n"mylib.wait" = "mylib.await_"\n')
    catalog = load_catalog((str(user),), rules_dir=rules_dir)
    assert catalog.rules["BA197"].title == "A good rule"
    assert catalog.rules["BA197"].remediation == "Do {thing}."
    assert catalog.section("blocking")["calls"] == ["time.sleep", "mylib.wait"]  # lists concatenate
    assert catalog.section("blocking")["alternatives"] == {"time.sleep": "asyncio.sleep", "mylib.wait": "mylib.await_"}
    base_only = load_catalog(rules_dir=rules_dir)
    assert base_only.digest != catalog.digest  # a user catalog changes the cache key


def test_user_catalog_folder(tmp_path):
    rules_dir = tmp_path / "builtin"
    rules_dir.mkdir()
    write(tmp_path, "extra/a.toml", GOOD_RULE)
    write(tmp_path, "extra/b.toml", MARKER_CATALOG)
    catalog = load_catalog((str(tmp_path / "extra"),), rules_dir=rules_dir)
    assert sorted(catalog.rules) == ["BA197", "BA198", "BA498"]


@pytest.mark.parametrize("text, needles", [
    ("[[rule]\nid = 1\n", ["invalid TOML"]),
    (_variant('title = "A good rule"\n', ""), ["rule BA197", "missing key 'title'"]),
    (_variant('severity = "low"', 'severity = "urgent"'), ["rule BA197", "'severity'", "urgent"]),
    (_variant('severity = "low"', "severity = 3"), ["'severity'"]),
    (_variant('confidence = "medium"', 'confidence = "sure"'), ["'confidence'", "sure"]),
    (_variant('id = "BA197"', 'id = "X197"'), ["rule[0]", "'id'", "X197"]),
    (_variant('id = "BA197"', 'id = "BA1977"'), ["'id'", "BA1977"]),
    (_variant('id = "BA197"', "id = 197"), ["'id'", "197"]),
    (_variant('category = "n-plus-one"', 'category = "blocking-io"'), ["'category'", "blocking-io"]),
    (_variant('name = "good-rule"', 'name = "Good Rule"'), ["'name'", "kebab-case"]),
    (_variant('why = "w"', "why = ['w']"), ["'why'", "string"]),
    (_variant('why = "w"', 'why = "  "'), ["'why'"]),
    (_variant('references = ["https://example.invalid"]', 'references = "https://example.invalid"'),
     ["'references'", "list of strings"]),
    (_variant(extra='colour = "red"\n'), ["rule BA197", "unknown key 'colour'"]),
    ('rule = "not a table"\n', ["'rule'", "[[rule]]"]),
    ('[rules]\nx = 1\n', ["unknown top-level key 'rules'"]),
    ('catalog = 3\n', ["'catalog'", "table"]),
    ('[catalog]\nblocking = 3\n', ["'catalog.blocking'", "table"]),
])
def test_malformed_catalogs_name_the_file_and_key(tmp_path, text, needles):
    rules_dir = tmp_path / "builtin"
    rules_dir.mkdir()
    bad = tmp_path / "bad_catalog.toml"
    bad.write_text(text)
    with pytest.raises(CatalogError) as err:
        load_catalog((str(bad),), rules_dir=rules_dir)
    message = str(err.value)
    assert str(bad) in message, message
    for needle in needles:
        assert needle in message, message


def test_missing_and_non_utf8_catalog_files(tmp_path):
    rules_dir = tmp_path / "builtin"
    rules_dir.mkdir()
    with pytest.raises(CatalogError, match="not found"):
        load_catalog((str(tmp_path / "nope.toml"),), rules_dir=rules_dir)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[catalog.x]\nname = "caf\xe9"\n')
    with pytest.raises(CatalogError, match="not UTF-8"):
        load_catalog((str(latin),), rules_dir=rules_dir)


# --- `backend-audit rules` --------------------------------------------------------------------

def test_rules_lists_and_documents_rules_including_user_catalogs(tmp_path):
    marker_project(tmp_path)
    proc = run_cli(["rules"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = {ln.split()[0]: ln for ln in proc.stdout.splitlines() if ln.strip()}
    assert "marker-flagme" in lines["BA198"] and "medium" in lines["BA198"]
    assert "BA498" in lines
    builtin = load_catalog()
    assert set(builtin.rules) <= set(lines)

    proc = run_cli(["rules", "BA198"], tmp_path)
    assert proc.returncode == 0
    for needle in ("BA198 marker-flagme", "n-plus-one", "default severity medium", "A flagme() call",
                   "What it finds", "Why it matters", "How to fix", "Trade-offs", "https://example.invalid/flagme"):
        assert needle in proc.stdout, needle
    by_name = run_cli(["rules", "marker-flagme"], tmp_path)
    assert by_name.stdout == proc.stdout
    lower = run_cli(["rules", "ba198"], tmp_path)
    assert lower.stdout == proc.stdout

    doc = json.loads(run_cli(["rules", "BA498", "--format", "json"], tmp_path).stdout)
    assert doc["id"] == "BA498" and doc["category"] == "blocking-io" and doc["severity"] == "high"
    listed = json.loads(run_cli(["rules", "--format", "json"], tmp_path).stdout)
    assert {"BA198", "BA498"} <= {r["id"] for r in listed}


def test_rules_errors_are_clear_exit_2(tmp_path):
    marker_project(tmp_path)
    proc = run_cli(["rules", "BA199"], tmp_path)
    assert proc.returncode == 2 and "unknown rule 'BA199'" in proc.stderr
    bad = tmp_path / "broken"
    write(bad, "pyproject.toml", '[tool.backend-audit]\nextend-catalogs = ["cat.toml"]\n')
    write(bad, "cat.toml", _variant('severity = "low"', 'severity = "urgent"'))
    proc = run_cli(["rules"], bad)
    assert proc.returncode == 2
    assert "cat.toml" in proc.stderr and "'severity'" in proc.stderr and proc.stdout == ""
    proc = run_cli(["rules", "--config", str(tmp_path / "pyproject.toml")], bad)
    assert proc.returncode == 0 and "BA198" in proc.stdout  # --config picks the other catalogs


def test_scan_with_a_bad_user_catalog_is_exit_2(tmp_path):
    write(tmp_path, "pyproject.toml", '[tool.backend-audit]\nextend-catalogs = ["cat.toml"]\n')
    write(tmp_path, "cat.toml", "[[rule]]\nid = 'BA197'\n")
    write(tmp_path, "app.py", "x = 1\n")
    proc = run_cli([".", "--no-cache", "-q"], tmp_path)
    assert proc.returncode == 2 and "cat.toml" in proc.stderr and "rule BA197" in proc.stderr
