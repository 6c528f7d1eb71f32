"""The README's promises: the quick start scans a bundled example with real findings, CI runs the
README's own test command, and the rule index lists every rule in the catalog."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from backend_audit.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")


def test_ci_runs_the_readme_test_command():
    marker = README.index("<!-- test-command -->")
    block = README[marker:].split("```", 2)[1]
    command = block.splitlines()[1].strip()
    assert "pytest" in command and "[test]" in command
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert "<!-- test-command -->" in ci and "python3 -m venv" in ci


def test_quick_start_example_shows_findings_in_every_category():
    quick = re.search(r"backend-audit (fixtures/\S+)", README)
    assert quick, "the quick start must scan a bundled example under fixtures/"
    target = ROOT / quick.group(1)
    assert target.is_dir()
    proc = subprocess.run([sys.executable, "-m", "backend_audit", str(target), "--no-llm", "--no-cache",
                           "--format", "json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    categories = {f["category"] for f in doc["findings"]}
    assert categories == {"n-plus-one", "missing-index", "unvalidated-input", "blocking-io"}
    assert doc["report"] and doc["report"].get("items"), "the offline report accompanies the findings"


def test_rule_index_lists_every_rule():
    start = README.index("<!-- rule-index -->")
    end = README.index("<!-- /rule-index -->")
    index = README[start:end]
    catalog = load_catalog()
    assert catalog.rules, "the catalog has rules"
    missing = [r.id for r in catalog.rules.values() if f"`{r.id}`" not in index or r.name not in index]
    assert not missing, f"README rule index lacks {missing}"
