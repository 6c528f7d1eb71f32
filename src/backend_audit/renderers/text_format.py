"""`--format text`: findings grouped by file with code excerpts, then a summary table (rich).

Per finding: position, rule id and name, severity, confidence and category, the message, the code
with the flagged lines marked `>`, the related places and the data-flow steps. File diagnostics
follow as warnings, then a table of counts by category and severity, then the advisor's report
rendered from Markdown. Colour only when `color=True` (the CLI decides, honouring `NO_COLOR`);
without colour the output is plain text at a fixed width, so it is stable for tests and logs.
"""

from __future__ import annotations

import io
import shutil

from backend_audit.catalog import Catalog
from backend_audit.findings import Finding, ScanResult
from backend_audit.renderers.common import (
    SEVERITIES_DESC,
    clean,
    counts,
    excerpt_lines,
    flagged,
    group_by_file,
    language_of,
    location,
    plural,
    report_markdown,
    rule_doc,
    severity_totals,
    short_ids,
)

PLAIN_WIDTH = 100

SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan"}


def render(result: ScanResult, catalog: Catalog, *, color: bool = False, width: int | None = None) -> str:
    from rich.console import Console

    if width is None:
        width = max(60, min(160, shutil.get_terminal_size((PLAIN_WIDTH, 24)).columns)) if color else PLAIN_WIDTH
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, no_color=not color, color_system="auto" if color else None,
                      width=width, highlight=False, emoji=False, soft_wrap=False, legacy_windows=False)
    ids = short_ids(result)
    for path, findings in group_by_file(result.findings):
        _file(console, path, findings, catalog, ids, color)
    if result.errors:
        console.print()
        for e in result.errors:
            console.print(_warning(location(e.path, e.line), e.kind, e.message))
    console.print()
    _summary(console, result)
    report = report_markdown(result)
    if report:
        from rich.markdown import Markdown
        from rich.rule import Rule

        console.print()
        console.print(Rule("Remediation report"))
        console.print(Markdown(clean(report), code_theme="ansi_dark", hyperlinks=False))
    text = buf.getvalue()
    if not color:  # rich pads lines to the console width; plain output should not carry that
        text = "\n".join(line.rstrip() for line in text.split("\n"))
    return text


def _file(console, path: str, findings: list[Finding], catalog: Catalog, ids: dict[int, str], color: bool) -> None:
    from rich.text import Text

    console.print()
    console.print(Text.assemble((clean(path), "bold underline"), f"  ({plural(len(findings), 'finding')})"))
    for f in findings:
        console.print()
        _finding(console, f, catalog, ids.get(id(f), ""), color)


def _finding(console, f: Finding, catalog: Catalog, short_id: str, color: bool) -> None:
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    doc = rule_doc(catalog, f.rule)
    head = Text("  ")
    if short_id:
        head.append(f"[{short_id}] ", "bold")
    head.append(f"{f.line}:{f.column}", "dim")
    head.append("  ")
    head.append(f.rule, "bold")
    if doc:
        head.append(f" {doc.name}")
    head.append("  ")
    head.append(f.severity, SEVERITY_STYLE.get(f.severity, ""))
    head.append(f"  confidence {f.confidence}  {f.category}", "dim")
    parts = [head, Padding(Text(clean(f.message)), (0, 0, 0, 4))]  # wrapped lines keep the indent
    pairs = excerpt_lines(f.excerpt)
    if pairs:
        parts.append(_excerpt(f, pairs, color))
    steps = [("related", location(r.path, r.line), r.message) for r in f.related]
    steps += [("flow" if n == 1 else "", f"{n}. {location(s.path, s.line)}", s.message)
              for n, s in enumerate(f.flow, 1)]
    if steps:
        parts.append(_steps(steps))
    console.print(Group(*parts))


def _excerpt(f: Finding, pairs: list[tuple[int, str]], color: bool):
    """The code lines with a `>` gutter on the flagged ones (syntax-highlighted in colour)."""
    from rich.text import Text

    width = max(len(str(n)) for n, _ in pairs)
    out = Text(no_wrap=True, overflow="ellipsis")
    highlighted = _highlight(f.path, [code for _, code in pairs]) if color else None
    for i, (n, code) in enumerate(pairs):
        mark = flagged(f, n)
        out.append("  > " if mark else "    ", "bold red" if mark else "")
        out.append(f"{n:>{width}} | ", "bold" if mark else "dim")
        out.append_text(highlighted[i] if highlighted else Text(clean(code).expandtabs(4)))
        if i < len(pairs) - 1:
            out.append("\n")
    return out


def _highlight(path: str, lines: list[str]):
    """Lines of code as styled rich Text, or None if highlighting fails."""
    try:
        from rich.syntax import Syntax

        code = clean("\n".join(lines))
        syntax = Syntax(code, language_of(path), theme="ansi_dark", tab_size=4)
        text = syntax.highlight(code)
        text.rstrip()
        parts = text.split("\n", allow_blank=True)
        return list(parts) if len(parts) == len(lines) else None
    except Exception:  # noqa: BLE001 - colour is decoration; fall back to plain code
        return None


def _steps(steps: list[tuple[str, str, str]]):
    """Related places and data-flow steps: a label column, then `path:line  message` (wrapped
    lines stay in their column)."""
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, style="dim", min_width=len("related"))
    grid.add_column()
    for label, where, message in steps:
        text = Text(clean(where), "bold")
        if message:
            text.append(f"  {clean(message)}", "")
        grid.add_row(label, text)
    return Padding(grid, (0, 0, 0, 4))


def _warning(where: str, kind: str, message: str):
    from rich.text import Text

    return Text.assemble(("warning", "bold yellow"), ": ", (clean(where), "bold"), clean(f": {kind}: {message}"))


def _summary(console, result: ScanResult) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    findings = result.findings
    table = Table(title="Findings by category and severity", box=box.SIMPLE_HEAVY, title_justify="left",
                  show_footer=True)
    table.add_column("category", footer="total")
    totals = severity_totals(findings)
    for sev in SEVERITIES_DESC:
        table.add_column(sev, justify="right", footer=str(totals[sev]),
                         header_style=SEVERITY_STYLE[sev] if totals[sev] else "dim")
    table.add_column("total", justify="right", footer=str(len(findings)))
    for category, counter in counts(findings).items():
        cells = [Text(str(counter[s]), style=SEVERITY_STYLE[s] if counter[s] else "dim") for s in SEVERITIES_DESC]
        table.add_row(category, *cells, str(sum(counter.values())))
    console.print(table)
    files_with = len({f.path for f in findings})
    line = f"{plural(len(findings), 'finding')} in {plural(files_with, 'file')}"
    stats = result.stats
    if stats.get("files") is not None:
        line += f"; scanned {plural(int(stats['files']), 'file')}"
        if stats.get("seconds") is not None:
            line += f" in {stats['seconds']} s"
        if stats.get("cache_hits"):
            line += f" ({stats['cache_hits']} from cache)"
    if result.errors:
        line += f"; {plural(len(result.errors), 'file diagnostic')}"
    if stats.get("baseline_hidden"):
        line += f"; {stats['baseline_hidden']} hidden by the baseline"
    console.print(Text(line, style="bold"))
