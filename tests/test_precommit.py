"""The pre-commit hook, run by the real `pre-commit try-repo` in a temporary git repository.

try-repo builds the hook's virtual environment by pip-installing this package (from PyPI come
its dependencies; pip's own cache makes re-runs quick), so this test is the slow one of the suite:
one environment, two hook runs (a bad project fails, the fixed one passes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import write
from test_discovery import git, git_repo

ROOT = Path(__file__).resolve().parents[1]

# classic problems of several categories, so the test holds whichever analyzers are registered
BAD = '''
import os
import time

import requests
from flask import Flask, request

app = Flask(__name__)


@app.route("/run")
def run():
    os.system(request.args["cmd"])
    return "ok"


async def fetch(url):
    time.sleep(1)
    return requests.get(url, timeout=5)
'''
GOOD = '''
import asyncio
import shlex


async def fetch(delay):
    await asyncio.sleep(delay)
    return shlex.quote("done")
'''


def _sample_has_findings(tmp_path: Path) -> bool:
    from backend_audit.catalog import load_catalog
    from backend_audit.engine import ScanOptions, scan

    sample = tmp_path / "sample"
    write(sample, "app.py", BAD)
    result = scan(ScanOptions(paths=[str(sample)], use_cache=False, jobs=1), load_catalog())
    return bool(result.findings)


def _copy_of_this_repository(dest: Path) -> Path:
    """The work tree as it is now (committed or not), as a committed repository for try-repo."""
    dest.mkdir()
    for name in ("src", "rules", "pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "LICENSE"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc",
                                                                             ".backend_audit_cache"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    git_repo(dest)
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "snapshot")
    return dest


def _try_repo(hook_repo: Path, project: Path, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("BACKEND_AUDIT_CACHE_DIR", "ANTHROPIC_API_KEY", "CI")}
    env.update({"PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never", "GIT_CONFIG_GLOBAL": os.devnull,
                "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), "backend-audit",
                           "--all-files", "--verbose"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=900)


def test_hook_manifest():
    yaml = pytest.importorskip("yaml")

    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"backend-audit", "backend-audit-diff"}
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert hook["pass_filenames"] is False  # cross-file analysis needs the whole project
        assert set(hook["types_or"]) == {"python", "sql", "html", "jinja"}
        assert hook["entry"].startswith("backend-audit ")
    assert "--diff-base HEAD" in hooks["backend-audit-diff"]["entry"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_pre_commit_try_repo_fails_on_a_bad_project_and_passes_a_clean_one(tmp_path):
    pytest.importorskip("pre_commit")
    if not _sample_has_findings(tmp_path):
        pytest.skip("no registered analyzer flags the sample yet")
    hook_repo = _copy_of_this_repository(tmp_path / "backend-audit-src")
    project = git_repo(tmp_path / "project")
    write(project, "app.py", BAD)
    write(project, "README.md", "a project\n")
    git(project, "add", "-A")

    bad = _try_repo(hook_repo, project, tmp_path / "pc-home")
    out = bad.stdout + bad.stderr
    assert bad.returncode == 1, out
    assert "backend-audit" in out and "Failed" in out
    assert "app.py" in out and "BA" in out  # the finding is shown to the committer
    assert "Traceback" not in out

    write(project, "app.py", GOOD)
    git(project, "add", "-A")
    good = _try_repo(hook_repo, project, tmp_path / "pc-home")
    out = good.stdout + good.stderr
    assert good.returncode == 0, out
    assert "Passed" in out
