"""`--format markdown`: the document the pull-request comment carries.

A title, a table of counts by category and severity, the findings (most severe first, each with a
`path:line` reference and its code, related places and data flow in a collapsible `<details>`),
file diagnostics, then the advisor's report. The whole document stays within `limit` characters
(GitHub rejects comments over 65,536): the report is capped at half the budget, and findings
that do not fit lose their details and then are left out, with a note saying how many.
"""

from __future__ import annotations

from backend_audit import __version__
from backend_audit.catalog import Catalog
from backend_audit.findings import Finding, ScanResult
from backend_audit.renderers.common import (
    SEVERITIES_DESC,
    TOOL_NAME,
    by_priority,
    clean,
    counts,
    defuse_mentions,
    language_of,
    location,
    marked_excerpt,
    md_code,
    md_escape,
    md_fence,
    md_inline,
    plural,
    report_markdown,
    rule_label,
    severity_totals,
    short_ids,
    shorten,
)

#: GitHub's limit for an issue or pull-request comment body
GITHUB_COMMENT_LIMIT = 65_536
#: our default: GitHub's limit with room for a marker or a footer the integration adds
DEFAULT_LIMIT = GITHUB_COMMENT_LIMIT - 1_536
#: a message longer than this is cut (the other formats carry it whole)
MAX_MESSAGE = 1_000
#: diagnostics listed in full; the rest are counted
MAX_DIAGNOSTICS = 20


def render(result: ScanResult, catalog: Catalog, *, color: bool = False, limit: int = DEFAULT_LIMIT) -> str:
    return to_markdown(result, catalog, limit=limit)


def to_markdown(result: ScanResult, catalog: Catalog, *, limit: int = DEFAULT_LIMIT, title: str | None = None) -> str:
    """The Markdown document, at most `limit` characters long."""
    head = _head(result, title)
    diagnostics = _diagnostics(result)
    report = report_markdown(result)
    report_part = ""
    if report:
        report_part = "\n## Remediation report\n\n" + defuse_mentions(clean(report.strip())) + "\n"
        report_part = _cap(report_part, max(0, limit // 2))
    findings = by_priority(result.findings)
    reserve = 200  # the truncation note
    budget = limit - len(head) - len(diagnostics) - len(report_part) - reserve
    body: list[str] = []
    shown = 0
    if findings:
        header = "\n## Findings\n\n"
        budget -= len(header)
        body.append(header)
        ids = short_ids(result)
        for f in findings:
            n = ids.get(id(f), "")
            full = _finding(n, f, catalog, details=True)
            if len(full) <= budget:
                body.append(full)
                budget -= len(full)
                shown += 1
                continue
            short = _finding(n, f, catalog, details=False)
            if len(short) > budget:
                continue  # a smaller one further down may still fit
            body.append(short)
            budget -= len(short)
            shown += 1
        if shown < len(findings):
            body.append(f"\n> **Note:** {plural(len(findings) - shown, 'more finding')} not shown here to stay "
                        "within GitHub's comment size limit; the SARIF, JSON or text output lists them all.\n")
    text = head + "".join(body) + diagnostics + report_part
    return _cap(text, limit)


def _head(result: ScanResult, title: str | None) -> str:
    findings = result.findings
    lines = [f"# {title or f'{TOOL_NAME} report'}", ""]
    totals = severity_totals(findings)
    if not findings:
        lines.append("No findings.")
    else:
        by_sev = ", ".join(f"{totals[s]} {s}" for s in SEVERITIES_DESC if totals[s])
        lines.append(f"**{plural(len(findings), 'finding')}** ({by_sev})"
                     f" in {plural(len({f.path for f in findings}), 'file')}.")
    lines += ["", "| Category | " + " | ".join(s.capitalize() for s in SEVERITIES_DESC) + " | Total |",
              "|---|" + "---:|" * (len(SEVERITIES_DESC) + 1)]
    for category, counter in counts(findings).items():
        cells = " | ".join(str(counter[s]) for s in SEVERITIES_DESC)
        lines.append(f"| {md_escape(category)} | {cells} | {sum(counter.values())} |")
    cells = " | ".join(str(totals[s]) for s in SEVERITIES_DESC)
    lines.append(f"| **Total** | {cells} | **{len(findings)}** |")
    files = result.stats.get("files")
    seconds = result.stats.get("seconds")
    if files is not None:
        scanned = f"Scanned {plural(int(files), 'file')}"
        if seconds is not None:
            scanned += f" in {seconds} s"
        lines += ["", f"<sub>{scanned} with {TOOL_NAME} {__version__}.</sub>"]
    return "\n".join(lines) + "\n"


def _finding(short_id: str, f: Finding, catalog: Catalog, *, details: bool) -> str:
    head = (f"**{md_escape(short_id)} · {md_escape(f.severity)}** · {md_escape(rule_label(catalog, f.rule))} · "
            f"{md_code(location(f.path, f.line))}<br>\n{md_inline(shorten(f.message, MAX_MESSAGE))}"
            f" <sub>({md_escape(f.category)}, confidence {md_escape(f.confidence)})</sub>\n\n")
    if not details:
        return head
    inner: list[str] = []
    excerpt = marked_excerpt(f)
    if excerpt:
        inner.append(md_fence("\n".join(shorten(line, 300) for line in excerpt), language_of(f.path)))
    if f.related:
        inner.append("Related:\n\n" + "\n".join(
            f"- {md_code(location(r.path, r.line))} {md_inline(shorten(r.message, MAX_MESSAGE))}"
            for r in f.related))
    if f.flow:
        inner.append("Data flow:\n\n" + "\n".join(
            f"{i}. {md_code(location(s.path, s.line))} {md_inline(shorten(s.message, MAX_MESSAGE))}"
            for i, s in enumerate(f.flow, 1)))
    if not inner:
        return head
    summary = " and ".join(p for p, present in (("code", bool(excerpt)), ("related places", bool(f.related)),
                                                 ("data flow", bool(f.flow))) if present)
    return f"{head}<details><summary>{summary}</summary>\n\n" + "\n\n".join(inner) + "\n\n</details>\n\n"


def _diagnostics(result: ScanResult) -> str:
    if not result.errors:
        return ""
    lines = ["", f"## Files not fully analyzed ({len(result.errors)})", ""]
    shown = result.errors[:MAX_DIAGNOSTICS]
    for e in shown:
        lines.append(f"- {md_code(location(shorten(e.path, 200), e.line))} {md_escape(e.kind)}: "
                     f"{md_escape(shorten(e.message, 300))}")
    if len(result.errors) > len(shown):
        lines.append(f"- … and {len(result.errors) - len(shown)} more")
    return "\n".join(lines) + "\n"


def _cap(text: str, limit: int) -> str:
    """Cut at a line boundary so the text (with a note) fits in `limit` characters."""
    if len(text) <= limit:
        return text
    note = "\n\n> **Note:** truncated to fit GitHub's comment size limit.\n"
    head = text[: max(0, limit - len(note) - 64)]
    if "\n" in head:
        head = head[: head.rindex("\n")]
    # an open code fence or <details> would swallow the note: close them
    fence = ""
    for line in head.splitlines():
        stripped = line.strip()
        if fence:
            if stripped.startswith(fence) and not stripped.strip("`"):
                fence = ""
        elif stripped.startswith("```"):
            fence = stripped[: len(stripped) - len(stripped.lstrip("`"))]
    closers = f"\n{fence}" if fence else ""
    closers += "\n\n</details>" * max(0, head.count("<details>") - head.count("</details>"))
    out = head + closers + note
    return out if len(out) <= limit else out[:limit]
