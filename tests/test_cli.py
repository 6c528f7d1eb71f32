"""The command line as a user meets it: exit codes, selection, severity, suppressions, output.

Helpers here are shared by the other control-surface tests (`from test_cli import ...`):

* `run_cli` runs the installed tool in a subprocess (the console script when it is on PATH,
  else `python -m backend_audit`) and checks that no traceback ever reaches the user.
* `invoke` runs it in-process with a tiny marker analyzer in place of the real ones, so tests
  of the control surface (filters, baseline, diff) do not depend on what the analyzers find:
  a call `flagme()` is a BA198 finding (n-plus-one, medium), `blockme()` a BA498 finding
  (blocking-io, high). Their rule documentation comes from a user catalog (`extend-catalogs`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from backend_audit.analyzers.base import AnalysisContext, Analyzer, FileUnit

# --- shared helpers ---------------------------------------------------------------------------

MARKER_CATALOG = textwrap.dedent('''
    [[rule]]
    id = "BA198"
    name = "marker-flagme"
    category = "n-plus-one"
    title = "A flagme() call (test marker rule)"
    severity = "medium"
    confidence = "high"
    description = "Finds flagme() calls."
    why = "Tests need a predictable finding."
    fix = "Remove the call."
    tradeoffs = "None."
    example_bad = "flagme()"
    example_good = "pass"
    references = ["https://example.invalid/flagme"]

    [[rule]]
    id = "BA498"
    name = "marker-blockme"
    category = "blocking-io"
    title = "A blockme() call (test marker rule)"
    severity = "high"
    confidence = "medium"
    description = "Finds blockme() calls."
    why = "Tests need a second rule."
    fix = "Remove the call."
    tradeoffs = "None."
    example_bad = "blockme()"
    example_good = "pass"
    references = []
''')


class MarkerAnalyzer(Analyzer):
    """Flags `flagme()` (BA198) and `blockme()` (BA498) calls, from the generic summary."""

    name = "marker"
    category = "n-plus-one"
    RULES = {"flagme": "BA198", "blockme": "BA498"}

    def collect(self, unit: FileUnit):
        if unit.module is None or not ("flagme" in unit.text or "blockme" in unit.text):
            return None
        hits = set()
        for fn in unit.module.functions.values():
            for call in fn.calls:
                name = (call.ref or "").split(".")[-1].lstrip("@$")
                if name in self.RULES:
                    hits.add((self.RULES[name], call.line, call.col, call.end_line, call.end_col, name))
        return sorted(hits) or None

    def analyze(self, ctx: AnalysisContext):
        out = []
        for path, hits in sorted(ctx.facts_of(self.name).items()):
            for rule, line, col, end_line, end_col, name in hits:
                out.append(ctx.finding(rule, path, line, col, end_line, end_col, f"call to {name}()",
                                       context={"call": name}))
        return out


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), "utf-8")
    return path


def marker_project(root: Path, config: str = "") -> Path:
    """A project whose pyproject.toml adds the marker rules' catalog."""
    write(root, "marker_rules.toml", MARKER_CATALOG)
    write(root, "pyproject.toml", '[tool.backend-audit]\nextend-catalogs = ["marker_rules.toml"]\n' + config)
    return root


def cli_command() -> list[str]:
    exe = shutil.which("backend-audit")
    if exe and Path(exe).resolve().parent == Path(sys.executable).resolve().parent:
        return [exe]
    return [sys.executable, "-m", "backend_audit"]


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120,
            **kwargs) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("BACKEND_AUDIT_CACHE_DIR", "CI", "ANTHROPIC_API_KEY", "NO_COLOR", "FORCE_COLOR",
                              "BACKEND_AUDIT_DEBUG")}
    full_env.update(env or {})
    proc = subprocess.run([*cli_command(), *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout, **kwargs)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout
    return proc


@pytest.fixture
def invoke(monkeypatch):
    """Run the CLI in-process in a folder, with only the marker analyzer."""
    import backend_audit.engine as engine

    monkeypatch.setattr(engine, "load_analyzers", lambda: ([MarkerAnalyzer()], []))
    monkeypatch.delenv("BACKEND_AUDIT_CACHE_DIR", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)

    def _invoke(args: list[str], cwd: Path):
        monkeypatch.chdir(cwd)
        result = CliRunner().invoke(_main(), args, catch_exceptions=False)
        assert "Traceback" not in result.output
        return result

    return _invoke


def _main():
    from backend_audit.cli import main

    return main


def findings_of(result) -> list[dict]:
    return json.loads(result.stdout)["findings"]


def rules_of(result) -> list[tuple[str, int]]:
    return [(f["rule"], f["line"]) for f in findings_of(result)]


APP = '''
    def view(rows):
        for row in rows:
            flagme(row)
        blockme()
'''


# --- exit codes and the fail threshold --------------------------------------------------------

def test_exit_codes_follow_fail_on_and_exit_zero(tmp_path, invoke):
    marker_project(tmp_path)
    write(tmp_path, "app.py", APP)
    base = [".", "--format", "json", "--no-cache", "-q"]
    r = invoke(base, tmp_path)
    assert r.exit_code == 1
    assert rules_of(r) == [("BA198", 3), ("BA498", 4)]
    f = findings_of(r)[0]
    assert (f["category"], f["severity"], f["path"]) == ("n-plus-one", "medium", "app.py")
    assert invoke([*base, "--fail-on", "high"], tmp_path).exit_code == 1  # BA498 is high
    assert invoke([*base, "--fail-on", "critical"], tmp_path).exit_code == 0
    assert invoke([*base, "--fail-on", "none"], tmp_path).exit_code == 0
    assert invoke([*base, "--exit-zero"], tmp_path).exit_code == 0
    assert invoke([*base, "--fail-on", "high", "--ignore", "BA498"], tmp_path).exit_code == 0


def test_clean_project_exits_zero(tmp_path, invoke):
    marker_project(tmp_path)
    write(tmp_path, "app.py", "def ok():\n    return 1\n")
    r = invoke([".", "--format", "json", "--no-cache", "-q"], tmp_path)
    assert r.exit_code == 0 and findings_of(r) == []


def test_fail_on_from_configuration(tmp_path, invoke):
    marker_project(tmp_path, 'fail-on = "critical"\n')
    write(tmp_path, "app.py", APP)
    assert invoke([".", "--format", "json", "--no-cache", "-q"], tmp_path).exit_code == 0
    # the command line wins over the file
    assert invoke([".", "--format", "json", "--no-cache", "-q", "--fail-on", "medium"], tmp_path).exit_code == 1


# --- selection, severity overrides ------------------------------------------------------------

@pytest.mark.parametrize("args, expected", [
    (["--select", "BA198"], [("BA198", 3)]),
    (["--select", "BA1"], [("BA198", 3)]),
    (["--select", "blocking-io"], [("BA498", 4)]),
    (["--select", "BA198,ba498"], [("BA198", 3), ("BA498", 4)]),
    (["--select", "BA198", "--select", "BA4"], [("BA198", 3), ("BA498", 4)]),
    (["--ignore", "n-plus-one"], [("BA498", 4)]),
    (["--ignore", "BA49"], [("BA198", 3)]),
    (["--select", "ALL", "--ignore", "BA498"], [("BA198", 3)]),
])
def test_select_and_ignore(tmp_path, invoke, args, expected):
    marker_project(tmp_path)
    write(tmp_path, "app.py", APP)
    r = invoke([".", "--format", "json", "--no-cache", "-q", *args], tmp_path)
    assert rules_of(r) == expected


def test_select_from_configuration_and_command_line_override(tmp_path, invoke):
    marker_project(tmp_path, 'select = ["blocking-io"]\n')
    write(tmp_path, "app.py", APP)
    assert rules_of(invoke([".", "--format", "json", "--no-cache", "-q"], tmp_path)) == [("BA498", 4)]
    assert rules_of(invoke([".", "--format", "json", "--no-cache", "-q", "--select", "BA1"], tmp_path)) == [("BA198", 3)]


def test_severity_overrides_change_severity_and_exit_code(tmp_path, invoke):
    marker_project(tmp_path, '[tool.backend-audit.severity]\nBA498 = "low"\nBA1 = "critical"\n')
    write(tmp_path, "app.py", APP)
    r = invoke([".", "--format", "json", "--no-cache", "-q", "--fail-on", "critical"], tmp_path)
    sev = {f["rule"]: f["severity"] for f in findings_of(r)}
    assert sev == {"BA198": "critical", "BA498": "low"}
    assert r.exit_code == 1
    r = invoke([".", "--format", "json", "--no-cache", "-q", "--fail-on", "critical", "--ignore", "BA1"], tmp_path)
    assert r.exit_code == 0


def test_per_file_ignores(tmp_path, invoke):
    marker_project(tmp_path, '[tool.backend-audit.per-file-ignores]\n"tests/*" = ["ALL"]\n'
                             '"test_*.py" = ["BA198"]\n"legacy/" = ["blocking-io"]\n')
    for rel in ("app.py", "tests/test_app.py", "other/test_views.py", "legacy/old.py"):
        write(tmp_path, rel, APP)
    r = invoke([".", "--format", "json", "--no-cache", "-q"], tmp_path)
    got = [(f["path"], f["rule"]) for f in findings_of(r)]
    assert got == [("app.py", "BA198"), ("app.py", "BA498"), ("legacy/old.py", "BA198"),
                   ("other/test_views.py", "BA498")]


# --- inline suppressions ----------------------------------------------------------------------

def test_inline_suppressions(tmp_path, invoke):
    marker_project(tmp_path)
    write(tmp_path, "app.py", '''
        def view(rows):
            flagme(1)  # backend-audit: ignore[BA198]
            flagme(2)  # backend-audit: ignore
            flagme(3)  # backend-audit: ignore[BA498]
            blockme()  # backend-audit: ignore[BA101, BA498]
            blockme()  #backend-audit:ignore[ba498]
            flagme(4)  # noqa
    ''')
    r = invoke([".", "--format", "json", "--no-cache", "-q"], tmp_path)
    assert rules_of(r) == [("BA198", 4), ("BA198", 7)]


# --- output -----------------------------------------------------------------------------------

def test_output_file_replaces_existing_file_whole(tmp_path, invoke):
    marker_project(tmp_path)
    write(tmp_path, "app.py", APP)
    out = tmp_path / "out" / "result.json"
    out.parent.mkdir()
    out.write_text("x" * 200_000)
    r = invoke([".", "--format", "json", "--no-cache", "-q", "-o", str(out)], tmp_path)
    assert r.exit_code == 1 and r.stdout == ""
    doc = json.loads(out.read_text())  # whole, valid, nothing of the old content left
    assert [f["rule"] for f in doc["findings"]] == ["BA198", "BA498"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["result.json"]


def test_output_into_a_pipe_writes_into_it_and_leaves_it_a_pipe(tmp_path, invoke):
    """`-o /dev/null`, `-o /dev/stdout` or a FIFO: written into, never renamed over (which would
    replace /dev/null itself with a regular file)."""
    import stat
    import threading

    marker_project(tmp_path)
    write(tmp_path, "app.py", APP)
    fifo = tmp_path / "results.pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    r = invoke([".", "--format", "json", "--no-cache", "-q", "-o", str(fifo)], tmp_path)
    reader.join(timeout=30)
    assert r.exit_code == 1, r.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [f["rule"] for f in json.loads(received[0])["findings"]] == ["BA198", "BA498"]


def test_output_through_a_symlink_replaces_the_file_it_points_to(tmp_path, invoke):
    marker_project(tmp_path)
    write(tmp_path, "app.py", APP)
    real = tmp_path / "reports" / "latest.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "report.json"
    link.symlink_to(real)
    r = invoke([".", "--format", "json", "--no-cache", "-q", "-o", str(link)], tmp_path)
    assert r.exit_code == 1, r.output
    assert link.is_symlink() and json.loads(real.read_text())["findings"]


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    from backend_audit import output

    target = tmp_path / "report.json"
    target.write_text("old report\n")

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.os, "replace", boom)
    with pytest.raises(output.OutputError, match="No space left"):
        output.write_output(target, "new " * 10_000)
    assert target.read_text() == "old report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_results_on_stdout_and_nothing_else_on_stderr_without_a_tty(tmp_path):
    write(tmp_path, "app.py", "def f():\n    return 1\n")
    proc = run_cli([".", "--format", "json", "--no-cache", "--no-llm"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    json.loads(proc.stdout)
    assert "\x1b[" not in proc.stderr  # no progress bar when stderr is not a terminal
    quiet = run_cli([".", "--format", "json", "--no-cache", "-q"], tmp_path)
    assert quiet.stderr == ""
    assert json.loads(quiet.stdout)["report"] is None


def test_progress_bar_only_on_a_tty(tmp_path):
    pty = pytest.importorskip("pty")
    for i in range(30):
        write(tmp_path, f"pkg/m{i}.py", f"def f{i}():\n    return {i}\n")
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([*cli_command(), ".", "--format", "json", "--no-cache", "--no-llm", "--jobs", "1"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=slave, timeout=120,
                              env={k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR")})
        os.close(slave)
        slave = None
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    assert proc.returncode == 0
    json.loads(proc.stdout)  # stdout stays clean JSON
    stderr = b"".join(chunks).decode("utf-8", "replace")
    assert "Traceback" not in stderr
    assert "\x1b[" in stderr  # rich drew (and then cleared) a progress bar on the terminal


def test_text_output_lists_findings_and_diagnostics(tmp_path, invoke):
    marker_project(tmp_path)
    write(tmp_path, "app.py", APP)
    write(tmp_path, "broken.py", "def f(:\n")
    r = invoke([".", "--no-cache", "-q", "--format", "text"], tmp_path)
    assert r.exit_code == 1
    assert "app.py" in r.stdout and "BA198" in r.stdout and "BA498" in r.stdout
    assert "broken.py" in r.stdout and "syntax-error" in r.stdout


# --- bad input: one clear message, exit code 2, never a traceback -----------------------------

def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    write(tmp, "proj/app.py", "def f():\n    return 1\n")
    write(tmp, "badcfg/pyproject.toml", '[tool.backend-audit]\nselect = ["BA1"]\nflavour = "spicy"\n')
    write(tmp, "badcfg/app.py", "x = 1\n")
    write(tmp, "badval/pyproject.toml", '[tool.backend-audit]\nfail-on = "sometimes"\n')
    write(tmp, "badval/app.py", "x = 1\n")
    write(tmp, "badtoml/pyproject.toml", '[tool.backend-audit\nselect = 1\n')
    write(tmp, "badtoml/app.py", "x = 1\n")
    write(tmp, "badcat/pyproject.toml", '[tool.backend-audit]\nextend-catalogs = ["mine.toml"]\n')
    write(tmp, "badcat/mine.toml", '[[rule]]\nid = "BA199"\nname = "x"\n')
    write(tmp, "badcat/app.py", "x = 1\n")
    write(tmp, "a_file", "not a folder\n")
    write(tmp, "notjson.json", "{nope")
    return {
        "missing path": (["does/not/exist"], "path does not exist: does/not/exist"),
        "unknown config key": (["badcfg"], "flavour"),
        "bad config value": (["badval"], "fail-on"),
        "bad config toml": (["badtoml"], "invalid TOML"),
        "missing config file": (["proj", "--config", "nope.toml"], "nope.toml"),
        "bad catalog": (["badcat"], "mine.toml"),
        "missing output folder": (["proj", "-o", "missing/dir/out.json"], "does not exist"),
        "output parent is a file": (["proj", "-o", "a_file/out.json"], "a_file"),
        "output is a folder": (["proj", "-o", "proj"], "proj"),
        "bad select code": (["proj", "--select", "BA1x"], "BA1x"),
        "unknown rule id": (["proj", "--ignore", "BA199"], "BA199"),
        "bad format": (["proj", "--format", "yaml"], "yaml"),
        "missing baseline": (["proj", "--baseline", "nope.json"], "nope.json"),
        "bad baseline": (["proj", "--baseline", "notjson.json"], "notjson.json"),
        "diff base outside git": (["proj", "--diff-base", "main"], "git"),
        "bad jobs": (["proj", "--jobs", "-3"], "jobs"),
    }


def test_bad_input_gives_one_clear_message_and_exit_2(tmp_path):
    cases = _bad_inputs(tmp_path)
    for name, (args, needle) in cases.items():
        proc = run_cli([*args, "--no-cache", "--format", "json"] if "--format" not in args else [*args, "--no-cache"],
                       tmp_path)
        assert proc.returncode == 2, (name, proc.returncode, proc.stderr)
        assert needle in proc.stderr, (name, proc.stderr)
        assert proc.stdout == "", (name, proc.stdout)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert 1 <= len(lines) <= 3, (name, proc.stderr)
        assert not (tmp_path / "missing").exists()
    assert (tmp_path / "a_file").read_text() == "not a folder\n"


def test_unwritable_output_folder(tmp_path):
    write(tmp_path, "app.py", "x = 1\n")
    targets = []
    if os.path.isdir("/sys"):
        targets.append("/sys/backend-audit-out.json")  # sysfs takes no new files, even from root
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        targets.append(str(locked / "out.json"))
    if not targets:
        pytest.skip("no unwritable folder available here")
    for target in targets:
        proc = run_cli([".", "--no-cache", "-q", "-o", target], tmp_path)
        assert proc.returncode == 2 and "cannot write output" in proc.stderr, proc.stderr
        assert not os.path.exists(target)
        assert proc.stdout == ""


def test_bad_configuration_names_file_and_key(tmp_path):
    write(tmp_path, "pyproject.toml", '[tool.backend-audit]\n[tool.backend-audit.severity]\nBA101 = "urgent"\n')
    write(tmp_path, "app.py", "x = 1\n")
    proc = run_cli([".", "--no-cache", "-q"], tmp_path)
    assert proc.returncode == 2
    assert "pyproject.toml" in proc.stderr and "severity.BA101" in proc.stderr and "urgent" in proc.stderr


def test_unknown_subcommand_like_path_is_a_clear_error(tmp_path):
    proc = run_cli(["--fail-on", "sometimes", "."], tmp_path)
    assert proc.returncode == 2 and "sometimes" in proc.stderr


def test_version_and_help(tmp_path):
    proc = run_cli(["--version"], tmp_path)
    assert proc.returncode == 0 and re.search(r"\d+\.\d+", proc.stdout)
    proc = run_cli(["--help"], tmp_path)
    assert proc.returncode == 0 and "rules" in proc.stdout and "github-comment" in proc.stdout
    proc = run_cli(["scan", "--help"], tmp_path)
    for option in ("--format", "--select", "--ignore", "--fail-on", "--exit-zero", "--baseline", "--write-baseline",
                   "--diff-base", "--no-cache", "--cache-dir", "--jobs", "--quiet", "--output", "--config"):
        assert option in proc.stdout, option


def test_broken_pipe_is_not_an_error(tmp_path):
    for i in range(5):
        write(tmp_path, f"m{i}.py", "x = 1\n")
    cmd = " ".join(f"'{c}'" for c in cli_command())
    proc = subprocess.run(f"{cmd} . --format json --no-cache -q | head -c 1", shell=True, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr


def test_color_only_when_asked_and_never_with_no_color(tmp_path):
    write(tmp_path, "app.py", "import time\n\n\nasync def f():\n    time.sleep(1)\n")
    write(tmp_path, "broken.py", "def f(:\n")  # a diagnostic at least, whatever the analyzers find
    plain = run_cli([".", "--no-cache", "-q"], tmp_path)
    assert "\x1b[" not in plain.stdout  # not a terminal: no escape codes in files and pipes
    forced = run_cli([".", "--no-cache", "-q"], tmp_path, env={"FORCE_COLOR": "1"})
    assert "\x1b[" in forced.stdout
    both = run_cli([".", "--no-cache", "-q"], tmp_path, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert "\x1b[" not in both.stdout
    as_json = run_cli([".", "--no-cache", "-q", "--format", "json"], tmp_path, env={"FORCE_COLOR": "1"})
    assert "\x1b[" not in as_json.stdout


def test_library_warnings_do_not_reach_stderr(tmp_path):
    """sqlglot warns through `logging` about SQL it only half understands; with no handler Python
    would print each warning on stderr. The CLI keeps stderr for its own messages."""
    write(tmp_path, "app.py", "x = 1\n")
    script = textwrap.dedent('''
        import logging, sys
        import backend_audit.engine as engine
        from backend_audit.cli import main

        real = engine.discover
        def noisy(*args, **kwargs):
            logging.getLogger("sqlglot").warning("'ALTER SESSION' contains unsupported syntax.")
            return real(*args, **kwargs)
        engine.discover = noisy
        main([".", "--no-cache", "-q", "--format", "json"])
    ''')
    env = {k: v for k, v in os.environ.items() if k != "BACKEND_AUDIT_DEBUG"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    json.loads(proc.stdout)


def test_an_analyzer_that_cannot_load_is_a_diagnostic_not_a_failed_scan(tmp_path, monkeypatch):
    import backend_audit.analyzers as registry
    from backend_audit.catalog import load_catalog
    from backend_audit.engine import ScanOptions, scan

    monkeypatch.setattr(registry, "REGISTRY", {**registry.REGISTRY, "blocking_io": "NoSuchAnalyzerClass",
                                               "not_written_yet": "LaterAnalyzer"})
    write(tmp_path, "app.py", "import time\n\n\nasync def f():\n    time.sleep(1)\n")
    result = scan(ScanOptions(paths=[str(tmp_path)], use_cache=False, jobs=1), load_catalog())
    problems = [(e.path, e.kind) for e in result.errors]
    assert problems == [("<scan>", "analyzer-error")]
    assert "blocking_io" in result.errors[0].message and "NoSuchAnalyzerClass" in result.errors[0].message
    assert not any(f.category == "blocking-io" for f in result.findings)
