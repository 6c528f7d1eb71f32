"""`--diff-base REF` in a real temporary git repository: only findings on lines added or changed
since the merge base with REF are reported."""

from __future__ import annotations

import json

from test_cli import invoke, marker_project, run_cli, write  # noqa: F401 (fixture)
from test_discovery import git, git_repo

from backend_audit.integrations.git_diff import parse_diff

SCAN = [".", "--format", "json", "--no-cache", "-q"]


def found(result) -> list[tuple[str, int, str]]:
    return [(f["path"], f["line"], f["rule"]) for f in json.loads(result.stdout)["findings"]]


def base_repo(tmp_path):
    repo = git_repo(tmp_path / "repo")
    marker_project(repo)
    write(repo, ".gitignore", ".backend_audit_cache/\n")
    write(repo, "app/views.py", '''
        def list_view(rows):
            for row in rows:
                flagme(row)
            return rows


        def detail_view(row):
            blockme()
            return row
    ''')
    write(repo, "app/old_name.py", '''
        def helper(items):
            for item in items:
                flagme(item)
            return items
    ''')
    write(repo, "app/untouched.py", "def f():\n    flagme()\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo


def test_only_added_or_changed_lines_since_the_merge_base(tmp_path, invoke):
    repo = base_repo(tmp_path)
    git(repo, "checkout", "-q", "-b", "feature")
    # a changed line, a new line, and a line shift for the old findings
    write(repo, "app/views.py", '''
        import logging


        def list_view(rows):
            for row in rows:
                flagme(row)
            return rows


        def detail_view(row):
            blockme(row, timeout=3)
            flagme(row)
            return row
    ''')
    # a renamed file with one new line: only that line is new
    git(repo, "mv", "app/old_name.py", "app/new_name.py")
    write(repo, "app/new_name.py", '''
        def helper(items):
            for item in items:
                flagme(item)
            blockme()
            return items
    ''')
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "feature work")
    # uncommitted edits and untracked files count as changes too
    write(repo, "app/untracked.py", "def g():\n    flagme()\n")
    # main moves on after the branch point: its changes are not ours
    git(repo, "checkout", "-q", "main")
    write(repo, "app/untouched.py", "def f():\n    flagme()\n    flagme()\n")
    git(repo, "commit", "-q", "-am", "main moves on")
    git(repo, "checkout", "-q", "feature")

    everything = found(invoke(SCAN, repo))
    assert len(everything) == 7
    r = invoke([*SCAN, "--diff-base", "main"], repo)
    assert found(r) == [
        ("app/new_name.py", 4, "BA498"),
        ("app/untracked.py", 2, "BA198"),
        ("app/views.py", 11, "BA498"),
        ("app/views.py", 12, "BA198"),
    ]
    assert json.loads(r.stdout)["stats"]["diff_hidden"] == 3
    assert r.exit_code == 1
    # against itself nothing is new (but the untracked file)
    assert found(invoke([*SCAN, "--diff-base", "HEAD"], repo)) == [("app/untracked.py", 2, "BA198")]


def test_scanning_a_subfolder_maps_paths_to_the_repository(tmp_path, invoke):
    repo = base_repo(tmp_path)
    write(repo, "app/views.py", (repo / "app/views.py").read_text() + "\n\ndef more():\n    blockme()\n")
    git(repo, "commit", "-q", "-am", "more")
    # scanning app/ only: paths are relative to app/, the diff's to the repository root
    r = invoke(["app", "--format", "json", "--no-cache", "-q", "--diff-base", "HEAD~1"], repo)
    assert found(r) == [("views.py", 13, "BA498")]


def test_bad_ref_and_no_repository_are_exit_2(tmp_path):
    repo = base_repo(tmp_path)
    for ref, needle in (("no-such-branch", "unknown git ref 'no-such-branch'"),
                        ("--output=x", "not a git ref"),
                        ("HEAD~99", "unknown git ref")):
        proc = run_cli([".", "--no-cache", "-q", f"--diff-base={ref}"], repo)
        assert proc.returncode == 2, proc.stderr
        assert needle in proc.stderr and proc.stdout == ""
    outside = tmp_path / "plain"
    write(outside, "a.py", "x = 1\n")
    proc = run_cli([".", "--no-cache", "-q", "--diff-base", "main"], outside)
    assert proc.returncode == 2 and "git work tree" in proc.stderr


def test_unrelated_history_has_no_merge_base(tmp_path):
    repo = base_repo(tmp_path)
    git(repo, "checkout", "-q", "--orphan", "island")
    git(repo, "commit", "-q", "-m", "unrelated", "--allow-empty")
    proc = run_cli([".", "--no-cache", "-q", "--diff-base", "main"], repo)
    assert proc.returncode == 2 and "merge base" in proc.stderr


def test_parse_diff_hunks_renames_deletions_and_quoted_names():
    diff = (b"diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -3 +3 @@\n-a\n+b\n@@ -10,0 +11,3 @@\n+1\n+2\n+3\n"
            b"@@ -20,2 +22,0 @@\n-gone\n-gone\n"
            b"diff --git a/old.py b/new.py\nsimilarity index 90%\nrename from old.py\nrename to new.py\n"
            b"--- a/old.py\n+++ b/new.py\n@@ -1,0 +2 @@\n+new\n"
            b"diff --git a/dead.py b/dead.py\n--- a/dead.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-x\n-y\n"
            b'--- a/"t\\303\\251st\\tx.py"\n+++ "b/t\\303\\251st\\tx.py"\n@@ -0,0 +1,2 @@\n+a\n+b\n')
    assert parse_diff(diff) == {"x.py": {3, 11, 12, 13}, "new.py": {2}, "tést\tx.py": {1, 2}}
