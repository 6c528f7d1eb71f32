"""`backend-audit [OPTIONS] [PATHS]...` and `backend-audit rules [RULE]`.

Exit codes: 0 nothing at or above the fail threshold, 1 findings at or above it, 2 usage,
configuration or internal error. Results go to stdout (or --output), everything else to stderr.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import click

from backend_audit import __version__
from backend_audit.config import FAIL_ON, FORMATS, Config, ConfigError, load_config

EXIT_USAGE = 2


class AuditError(click.ClickException):
    """A user-facing error: one clear line on stderr, exit code 2."""

    exit_code = EXIT_USAGE

    def show(self, file=None) -> None:  # noqa: D102 - click API
        click.echo(f"backend-audit: error: {self.format_message()}", err=True)


class DefaultGroup(click.Group):
    """`backend-audit PATHS` runs the scan; `rules` and `github-comment` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands or args[0] in ("--help", "-h"):
            if not (args and args[0] in ("--help", "-h", "--version")):
                args = ["scan", *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="backend-audit")
def main() -> None:
    """Find N+1 queries, missing indexes, unvalidated input and blocking I/O in Python backends.

    Run `backend-audit [OPTIONS] [PATHS]...` to scan (default: the current folder), or
    `backend-audit rules [RULE]` for the rule documentation.
    """
    _quiet_library_logging()
    for stream in (sys.stdout, sys.stderr):  # a non-UTF-8 terminal gets \u escapes, not a crash
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass


def _quiet_library_logging() -> None:
    """Libraries we use log warnings about the code they parse (sqlglot: "unsupported syntax,
    falling back..."); without a handler Python prints them to stderr, one per odd SQL string.
    Our own messages go through click; theirs are kept for BACKEND_AUDIT_DEBUG=1."""
    import logging

    if not os.environ.get("BACKEND_AUDIT_DEBUG"):
        root = logging.getLogger()
        if not root.handlers:
            root.addHandler(logging.NullHandler())


def run() -> None:
    """The console-script entry point: the CLI, then a prompt process exit.

    A scan of a large project keeps millions of small summary objects alive; tearing them down
    one by one at interpreter exit costs a noticeable fraction of a cold scan. Once the output
    is flushed nothing is left to do, so the process ends with `os._exit` and the OS reclaims the
    memory at once. (Tests and library users call `main` and keep normal teardown.)
    """
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            sys.stderr.write(exc.code + "\n")
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _use_color(stream) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


@main.command("scan")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Output format (default: text).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=str), help="Write results to FILE (atomically).")
@click.option("--select", multiple=True, help="Only these rules: ids (BA101), prefixes (BA1) or categories. Repeatable or comma-separated.")
@click.option("--ignore", multiple=True, help="Skip these rules (same forms as --select).")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default=None, help="Lowest severity that makes the exit code 1 (default: low).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("--no-llm", is_flag=True, help="Write the report offline, without calling the model.")
@click.option("--model", default=None, help="Anthropic model for the report.")
@click.option("--max-llm-tokens", type=click.IntRange(min=1), default=None, help="Input token budget for the report request.")
@click.option("--config", "config_file", type=click.Path(path_type=str), default=None, help="Configuration file (default: the nearest pyproject.toml).")
@click.option("--baseline", type=click.Path(path_type=str), default=None, help="Hide findings recorded in this baseline file.")
@click.option("--write-baseline", type=click.Path(dir_okay=False, path_type=str), default=None, help="Record the current findings as the baseline and exit 0.")
@click.option("--diff-base", default=None, help="Only report findings on lines added or changed since the merge base with this git ref.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the summary cache.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=str), default=None, help="Cache folder (default: .backend_audit_cache in the scanned root, or $BACKEND_AUDIT_CACHE_DIR).")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=None, help="Worker processes (default: all cores; 1 runs in-process).")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no report; findings only.")
@click.option("--no-report", is_flag=True, help="Do not write the remediation report.")
def scan_command(paths: tuple[str, ...], fmt: str | None, output: str | None, select: tuple[str, ...],
                 ignore: tuple[str, ...], fail_on: str | None, exit_zero: bool, no_llm: bool, model: str | None,
                 max_llm_tokens: int | None, config_file: str | None, baseline: str | None,
                 write_baseline: str | None, diff_base: str | None, no_cache: bool, cache_dir: str | None,
                 jobs: int | None, quiet: bool, no_report: bool) -> None:
    """Scan PATHS (default: the current folder) and report findings."""
    try:
        code = _run_scan(**locals())
    except click.ClickException:
        raise
    except ConfigError as exc:
        raise AuditError(f"bad configuration: {exc}") from None
    except KeyboardInterrupt:
        raise AuditError("interrupted") from None
    except Exception as exc:  # never a traceback for the user; say what broke
        if os.environ.get("BACKEND_AUDIT_DEBUG"):
            raise
        raise AuditError(f"internal error: {type(exc).__name__}: {exc} "
                         "(set BACKEND_AUDIT_DEBUG=1 for the traceback)") from None
    sys.exit(code)


def _split_codes(values: tuple[str, ...]) -> list[str]:
    """`--select BA1,ba401 --select blocking-io` -> ["BA1", "BA401", "blocking-io"]."""
    codes = [c.strip() for v in values for c in v.split(",") if c.strip()]
    return [c.upper() if re.fullmatch(r"(?i)ba\d*|all", c) else c for c in codes]


def _run_scan(*, paths, fmt, output, select, ignore, fail_on, exit_zero, no_llm, model, max_llm_tokens,
              config_file, baseline, write_baseline, diff_base, no_cache, cache_dir, jobs, quiet,
              no_report) -> int:
    from backend_audit.catalog import CatalogError, load_catalog
    from backend_audit.config import check_known_rules, check_rule_codes
    from backend_audit.discovery import DEFAULT_EXCLUDES, DEFAULT_MAX_BYTES, UsageError
    from backend_audit.engine import ScanOptions, scan
    from backend_audit.filters import apply_severity_overrides, drop_per_file_ignores, exit_code, select_findings
    from backend_audit.output import OutputError, check_writable, write_output
    from backend_audit.renderers import render

    path_list = list(paths) or ["."]
    if output == "-":  # the usual spelling of "standard output"
        output = None
    for p in path_list:
        if not os.path.lexists(p):
            raise AuditError(f"path does not exist: {p}")
    cli_select, cli_ignore = _split_codes(select), _split_codes(ignore)
    for codes, flag in ((cli_select, "--select"), (cli_ignore, "--ignore")):
        try:
            check_rule_codes(codes, flag, "command line")
        except ConfigError as exc:
            raise AuditError(str(exc)) from None
    cfg: Config = load_config(config_file, Path(path_list[0]))
    select_codes = cli_select or cfg.select
    ignore_codes = cli_ignore or cfg.ignore
    fmt = fmt or cfg.format
    try:
        catalog = load_catalog(tuple(cfg.extend_catalogs))
    except CatalogError as exc:
        raise AuditError(f"bad catalog: {exc}") from None
    for codes, flag in ((cli_select, "--select"), (cli_ignore, "--ignore")):
        try:
            check_known_rules(codes, catalog.rules, flag, "command line")
        except ConfigError as exc:
            raise AuditError(str(exc)) from None
    check_known_rules(cfg.select, catalog.rules, "select", cfg.source or "configuration")
    check_known_rules(cfg.ignore, catalog.rules, "ignore", cfg.source or "configuration")
    check_known_rules(list(cfg.severity), catalog.rules, "severity", cfg.source or "configuration")
    for pattern, codes in cfg.per_file_ignores.items():
        check_known_rules(codes, catalog.rules, f"per-file-ignores.{pattern}", cfg.source or "configuration")
    excludes = tuple(cfg.exclude) if cfg.exclude is not None else DEFAULT_EXCLUDES
    options = ScanOptions(
        paths=path_list, exclude=excludes + tuple(cfg.extend_exclude),
        max_file_bytes=cfg.max_file_bytes or DEFAULT_MAX_BYTES,
        jobs=jobs if jobs is not None else (cfg.jobs or 0), use_cache=not no_cache,
        cache_dir=cache_dir or os.environ.get("BACKEND_AUDIT_CACHE_DIR") or cfg.cache_dir, analyzer_options=cfg.analyzers,
    )
    # everything that can fail on bad input fails before the (possibly long) scan
    for target in (output, write_baseline):
        if target:
            try:
                check_writable(target)
            except OutputError as exc:
                raise AuditError(str(exc)) from None
    known_fingerprints = None
    baseline_path = baseline or cfg.baseline
    if baseline_path and not write_baseline:
        from backend_audit.baseline import BaselineError, load_fingerprints

        try:
            known_fingerprints = load_fingerprints(baseline_path)
        except BaselineError as exc:
            raise AuditError(str(exc)) from None
    changed = None
    if diff_base:
        from backend_audit.discovery import common_root
        from backend_audit.integrations.git_diff import GitDiffError, changed_lines

        try:
            changed = changed_lines(common_root([Path(p) for p in path_list]), diff_base)
        except GitDiffError as exc:
            raise AuditError(str(exc)) from None

    progress = None if quiet else _progress_reporter()
    try:
        result = scan(options, catalog, progress=progress)
    except UsageError as exc:
        raise AuditError(str(exc)) from None
    finally:
        if progress is not None:
            progress.close()

    findings = select_findings(result.findings, select_codes, ignore_codes)
    findings = drop_per_file_ignores(findings, cfg.per_file_ignores)
    apply_severity_overrides(findings, cfg.severity)
    if known_fingerprints is not None:
        kept = [f for f in findings if f.fingerprint not in known_fingerprints]
        result.stats["baseline_hidden"] = len(findings) - len(kept)
        findings = kept
    if changed is not None:
        from backend_audit.integrations.git_diff import keep_changed

        before = len(findings)
        findings = keep_changed(findings, result.root, *changed)
        result.stats["diff_hidden"] = before - len(findings)
    result.findings = findings

    if write_baseline:
        from backend_audit.baseline import write_baseline as write_bl

        try:
            write_bl(write_baseline, findings)
        except OutputError as exc:
            raise AuditError(str(exc)) from None
        if not quiet:
            click.echo(f"backend-audit: wrote {len(findings)} finding(s) to baseline {write_baseline}", err=True)
        return 0

    if not quiet and not no_report:
        result.report = _build_report(result, catalog, cfg, no_llm=no_llm or not cfg.llm, model=model,
                                      max_llm_tokens=max_llm_tokens)
    color = output is None and _use_color(sys.stdout) and fmt == "text"
    text = render(fmt, result, catalog, color=color)
    if output:
        try:
            write_output(output, text)
        except OutputError as exc:
            raise AuditError(str(exc)) from None
    else:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:  # `backend-audit | head`: the reader left; not an error of ours
            _silence_stdout()
    return exit_code(findings, fail_on or cfg.fail_on, exit_zero)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so Python's exit-time flush does not complain about the pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _build_report(result, catalog, cfg: Config, *, no_llm: bool, model: str | None, max_llm_tokens: int | None):
    """The advisor's report; never raises and never changes the exit code."""
    try:
        from backend_audit.advisor import AdvisorOptions, build_report
    except ImportError:
        return None
    scan_cache = os.environ.get("BACKEND_AUDIT_CACHE_DIR") or cfg.cache_dir  # same order as the scan's cache
    opts = AdvisorOptions(
        use_llm=not no_llm, model=model or cfg.model, max_llm_tokens=max_llm_tokens or cfg.max_llm_tokens,
        settings=cfg.analyzers.get("advisor", {}),
        cache_dir=os.path.join(scan_cache, "advisor") if scan_cache else None,  # default: <root>/.backend_audit_cache/advisor
    )
    try:
        return build_report(result, catalog, opts)
    except Exception as exc:  # the report is advice; the findings stand without it
        click.echo(f"backend-audit: warning: the report could not be written ({exc})", err=True)
        return None


class _Progress:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self) -> None:
        self._bar = None
        self._task = None
        if sys.stderr.isatty() and not os.environ.get("CI"):
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self._bar.start()

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self._bar is None:
            return
        label = "summarizing files" if phase == "summarize" else phase.replace("analyze:", "analyzing ")
        if self._task is None:
            self._task = self._bar.add_task(label, total=total)
        self._bar.update(self._task, description=label, completed=done, total=total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _progress_reporter() -> _Progress:
    return _Progress()


@main.command("rules")
@click.argument("rule", required=False)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              help="markdown: the rule index table as the README shows it.")
@click.option("--config", "config_file", type=click.Path(path_type=str), default=None,
              help="Configuration file whose extend-catalogs add rules (default: the nearest pyproject.toml).")
def rules_command(rule: str | None, fmt: str, config_file: str | None) -> None:
    """List the rules, or print one rule's documentation."""
    import json

    from backend_audit.catalog import CatalogError, load_catalog

    try:
        cfg = load_config(config_file, Path("."))
        catalog = load_catalog(tuple(cfg.extend_catalogs))
    except ConfigError as exc:
        raise AuditError(f"bad configuration: {exc}") from None
    except CatalogError as exc:
        raise AuditError(f"bad catalog: {exc}") from None
    if rule:
        key = rule.upper()
        doc = catalog.rules.get(key) or next((r for r in catalog.rules.values() if r.name == rule), None)
        if doc is None:
            raise AuditError(f"unknown rule {rule!r}; `backend-audit rules` lists them")
        if fmt == "json":
            click.echo(json.dumps(doc.to_json(), indent=2))
            return
        click.echo(f"{doc.id} {doc.name} ({doc.category}, default severity {doc.severity})\n")
        click.echo(f"{doc.title}\n")
        for heading, body in (("What it finds", doc.description), ("Why it matters", doc.why),
                              ("How to fix", doc.fix), ("Trade-offs", doc.tradeoffs),
                              ("Example (flagged)", doc.example_bad), ("Example (fixed)", doc.example_good)):
            click.echo(f"## {heading}\n{body.rstrip()}\n")
        if doc.references:
            click.echo("## References")
            for ref in doc.references:
                click.echo(f"- {ref}")
        return
    if fmt == "json":
        click.echo(json.dumps([r.to_json() for r in sorted(catalog.rules.values(), key=lambda r: r.id)], indent=2))
        return
    if fmt == "markdown":
        click.echo("| id | name | category | severity | what it finds |\n|---|---|---|---|---|")
        for doc in sorted(catalog.rules.values(), key=lambda r: r.id):
            click.echo(f"| `{doc.id}` | {doc.name} | {doc.category} | {doc.severity} | {doc.title} |")
        return
    for doc in sorted(catalog.rules.values(), key=lambda r: r.id):
        click.echo(f"{doc.id}  {doc.name:<36} {doc.category:<17} {doc.severity:<8} {doc.title}")


@main.command("github-comment")
@click.option("--body-file", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="The report to post (e.g. the output of --format markdown).")
@click.option("--pr", "number", type=click.IntRange(min=1), default=None,
              help="Pull request number (default: from the event in GITHUB_EVENT_PATH).")
def github_comment_command(body_file: str, number: int | None) -> None:
    """Post BODY_FILE as this tool's single PR comment, or update it in place.

    Reads GITHUB_API_URL, GITHUB_REPOSITORY, GITHUB_EVENT_PATH and GITHUB_TOKEN as GitHub Actions
    sets them.
    """
    from backend_audit.integrations.github import GitHubError, post_or_update, target_from_env

    try:
        report = Path(body_file).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError(f"cannot read --body-file {body_file}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        action, comment_id = post_or_update(target_from_env(number=number), report)
    except GitHubError as exc:
        raise AuditError(str(exc)) from None
    click.echo(f"backend-audit: {action} PR comment {comment_id}", err=True)
