"""Which files a scan reads, and how bad files become diagnostics instead of crashes or silence."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_cli import run_cli, write

from backend_audit.discovery import DEFAULT_EXCLUDES, discover, kind_of


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    return path


def rels(found) -> list[str]:
    return [f.rel for f in found.files]


def scan_json(root: Path, *args: str) -> dict:
    proc = run_cli([*args, "--format", "json", "--no-cache", "-q"] if args else [".", "--format", "json", "--no-cache", "-q"],
                   root)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def errors_by_path(doc: dict) -> dict[str, str]:
    """File diagnostics by path (scan-level notes, e.g. an analyzer still being built, left out)."""
    return {e["path"]: e["kind"] for e in doc["errors"] if e["path"] != "<scan>"}


# --- what is collected ------------------------------------------------------------------------

def test_kinds_of_files():
    assert kind_of("app/views.py") == "python"
    assert kind_of("app/views.pyi") is None
    assert kind_of("db/schema.sql") == "sql"
    assert kind_of("app/templates/app/list.html") == "template"
    assert kind_of("templates/mail/body.txt") == "template"
    assert kind_of("app/page.jinja2") == "template"
    assert kind_of("app/page.j2") == "template"
    assert kind_of("app/page.jinja") == "template"
    assert kind_of("docs/readme.txt") is None  # a .txt outside templates/ is not a template
    assert kind_of("static/index.html") is None
    assert kind_of("README.md") is None


def test_git_work_tree_honours_gitignore(tmp_path):
    repo = git_repo(tmp_path / "repo")
    write(repo, ".gitignore", "generated/\n*_local.py\n")
    write(repo, "app/views.py", "x = 1\n")
    write(repo, "app/templates/app/list.html", "{{ x }}\n")
    write(repo, "db/schema.sql", "create table t (id int);\n")
    write(repo, "generated/models.py", "x = 1\n")
    write(repo, "settings_local.py", "x = 1\n")
    write(repo, "tracked_then_deleted.py", "x = 1\n")
    git(repo, "add", "app/views.py", "tracked_then_deleted.py", ".gitignore")
    git(repo, "commit", "-q", "-m", "init")
    (repo / "tracked_then_deleted.py").unlink()
    write(repo, "app/new_untracked.py", "x = 1\n")  # untracked but not ignored: scanned
    write(repo, "venv/lib/site.py", "x = 1\n")  # not ignored by git, but a default exclude
    found = discover([str(repo)])
    assert rels(found) == ["app/new_untracked.py", "app/templates/app/list.html", "app/views.py", "db/schema.sql"]
    assert found.diagnostics == []  # a file deleted in the work tree is simply gone
    kinds = {f.rel: f.kind for f in found.files}
    assert kinds["db/schema.sql"] == "sql" and kinds["app/templates/app/list.html"] == "template"
    # an ignored file or folder named on the command line is still scanned: the user asked for it
    assert rels(discover([str(repo / "generated/models.py")])) == ["models.py"]
    assert rels(discover([str(repo / "generated")])) == ["models.py"]


def test_git_subfolder_and_several_paths(tmp_path):
    repo = git_repo(tmp_path / "repo")
    write(repo, ".gitignore", "*.gen.py\n")
    write(repo, "a/one.py", "x = 1\n")
    write(repo, "a/two.gen.py", "x = 1\n")
    write(repo, "b/three.py", "x = 1\n")
    write(repo, "c/four.py", "x = 1\n")
    found = discover([str(repo / "a"), str(repo / "b")])
    assert found.root == repo
    assert rels(found) == ["a/one.py", "b/three.py"]


def test_outside_git_default_excludes(tmp_path):
    write(tmp_path, "app/views.py", "x = 1\n")
    for folder in (".git", ".venv", "venv", "node_modules", "build", "dist", "__pycache__", ".tox",
                   "lib/site-packages", "pkg.egg-info", ".backend_audit_cache"):
        write(tmp_path, f"{folder}/mod.py", "x = 1\n")
    assert rels(discover([str(tmp_path)])) == ["app/views.py"]
    # `exclude` replaces the defaults, `extend-exclude` adds to them
    assert "build/mod.py" in rels(discover([str(tmp_path)], exclude=("venv",)))
    assert rels(discover([str(tmp_path)], exclude=DEFAULT_EXCLUDES + ("app",))) == []
    assert rels(discover([str(tmp_path)], exclude=DEFAULT_EXCLUDES + ("app/*.py",))) == []


def test_missing_path_is_a_usage_error(tmp_path):
    from backend_audit.discovery import UsageError

    with pytest.raises(UsageError, match="does not exist"):
        discover([str(tmp_path / "nope")])


# --- bad files become diagnostics -------------------------------------------------------------

def _bad_tree(root: Path) -> None:
    write(root, "good.py", "def ok():\n    return 1\n")
    (root / "latin1_cookie.py").write_bytes(b"# -*- coding: latin-1 -*-\nNAME = 'caf\xe9'\n")
    (root / "latin1_plain.py").write_bytes(b"x = 1\nNAME = 'caf\xe9'\n")
    (root / "binary.py").write_bytes(b"\x00\x01\x02 not text")
    (root / "big.py").write_bytes(b"x = 1\n" * 500)
    write(root, "broken.py", "def f(:\n    pass\n")
    write(root, "newer.py", "type Pair = tuple[int, int]\n\ndef first[T](xs: list[T]) -> T:\n    return xs[0]\n")
    os.symlink("loop.py", root / "loop.py")
    os.symlink("missing_target.py", root / "dangling.py")
    os.mkfifo(root / "pipe.py")
    (root / "sub").mkdir()
    os.symlink("..", root / "sub" / "up")
    (root / "templates").mkdir()
    (root / "templates" / "bad.html").write_bytes(b"<p>\xff\xfe</p>\n")
    write(root, "db/schema.sql", "create table t (id int);\n")


def test_bad_files_become_diagnostics_outside_git(tmp_path):
    _bad_tree(tmp_path)
    write(tmp_path, "pyproject.toml", "[tool.backend-audit]\nmax-file-bytes = 1000\n")
    doc = scan_json(tmp_path)
    errors = errors_by_path(doc)
    assert errors == {
        "binary.py": "binary-file",
        "big.py": "too-large",
        "broken.py": "syntax-error",
        "newer.py": "needs-newer-python",
        "latin1_plain.py": "decode-error",
        "loop.py": "symlink-loop",
        "dangling.py": "unreadable",
        "pipe.py": "unreadable",
        "sub/up": "symlink-loop",
        "templates/bad.html": "decode-error",
    }
    by_path = {e["path"]: e for e in doc["errors"]}
    assert by_path["broken.py"]["line"] == 1
    assert "1000" in by_path["big.py"]["message"] and "max-file-bytes" in by_path["big.py"]["message"]
    assert "line 2" in by_path["latin1_plain.py"]["message"] and "coding" in by_path["latin1_plain.py"]["message"]
    assert "newer Python" in by_path["newer.py"]["message"]
    # the latin-1 file with a coding cookie, the good file and the SQL file are analysed
    assert doc["stats"]["files"] == 8 and doc["stats"]["python_files"] == 2


def test_bad_files_become_diagnostics_inside_git(tmp_path):
    repo = git_repo(tmp_path / "repo")
    _bad_tree(repo)
    doc = scan_json(repo, ".")
    errors = errors_by_path(doc)
    for path, kind in {"binary.py": "binary-file", "broken.py": "syntax-error", "newer.py": "needs-newer-python",
                       "latin1_plain.py": "decode-error", "loop.py": "symlink-loop", "dangling.py": "unreadable"}.items():
        assert errors.get(path) == kind, (path, errors)
    assert "big.py" not in errors  # under the default cap


def test_text_output_shows_diagnostics(tmp_path):
    _bad_tree(tmp_path)
    proc = run_cli([".", "--no-cache", "-q", "--format", "text"], tmp_path)
    assert proc.returncode == 0
    for needle in ("binary.py", "binary-file", "newer.py", "needs-newer-python", "loop.py", "symlink-loop"):
        assert needle in proc.stdout, needle


def test_explicitly_named_files(tmp_path):
    _bad_tree(tmp_path)
    write(tmp_path, "notes.md", "# notes\n")
    doc = scan_json(tmp_path, "notes.md", "pipe.py", "dangling.py", "good.py")
    assert errors_by_path(doc) == {"notes.md": "unsupported-file", "pipe.py": "unreadable", "dangling.py": "unreadable"}
    assert doc["stats"]["files"] == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a mode-000 file")
def test_unreadable_file_without_permission(tmp_path):
    path = write(tmp_path, "secret.py", "x = 1\n")
    path.chmod(0)
    try:
        doc = scan_json(tmp_path)
    finally:
        path.chmod(0o644)
    assert errors_by_path(doc) == {"secret.py": "unreadable"}


def test_unreadable_file_even_as_root(tmp_path):
    """A path that stats as a regular file during discovery but cannot be read when the engine
    gets to it (replaced by a folder in between): a diagnostic, never a crash."""
    import backend_audit.engine as engine
    from backend_audit.catalog import load_catalog
    from backend_audit.engine import ScanOptions, scan

    write(tmp_path, "a.py", "x = 1\n")
    write(tmp_path, "b.py", "x = 1\n")
    real_discover = engine.discover

    def racing_discover(*args, **kwargs):
        found = real_discover(*args, **kwargs)
        (tmp_path / "b.py").unlink()
        (tmp_path / "b.py").mkdir()
        return found

    engine.discover = racing_discover
    try:
        result = scan(ScanOptions(paths=[str(tmp_path)], use_cache=False, jobs=1), load_catalog(), analyzers=[])
    finally:
        engine.discover = real_discover
    assert [(e.path, e.kind) for e in result.errors] == [("b.py", "unreadable")]
    assert result.stats["files"] == 2


def test_symlinked_folder_inside_tree_is_not_scanned_twice(tmp_path):
    write(tmp_path, "real/mod.py", "x = 1\n")
    os.symlink("real", tmp_path / "alias")
    outside = tmp_path.parent / (tmp_path.name + "_outside")
    write(outside, "lib.py", "y = 2\n")
    os.symlink(outside, tmp_path / "vendor")
    found = discover([str(tmp_path)])
    assert rels(found) == ["real/mod.py", "vendor/lib.py"]
    assert found.diagnostics == []


@pytest.mark.parametrize("in_git", [False, True])
def test_file_name_that_is_not_utf8(tmp_path, in_git):
    root = git_repo(tmp_path / "repo") if in_git else tmp_path
    with open(os.path.join(os.fsencode(root), b"caf\xe9.py"), "wb") as fh:
        fh.write(b"def f(:\n")  # a syntax error, so the odd name shows up in a diagnostic
    write(root, "ok.py", "x = 1\n")
    for fmt in ("text", "sarif", "markdown") if in_git else ("github", "rdjson"):
        proc = run_cli([".", "--no-cache", "-q", "--format", fmt], root)
        assert proc.returncode in (0, 1), (fmt, proc.stderr)
    doc = scan_json(root)
    assert errors_by_path(doc) == {"caf\\xe9.py": "syntax-error"}
