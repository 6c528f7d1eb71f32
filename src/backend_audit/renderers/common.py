"""Helpers the renderers share: severity maps, ordering, counts, excerpt parsing, Markdown escaping.

Every renderer is a function of (ScanResult, Catalog) without I/O. The only outside facts read
are where a consumer resolves paths from: `$GITHUB_WORKSPACE` (github, sarif) and the working
directory (rdjson); each renderer takes an explicit keyword for it, which the tests use.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import PurePosixPath

from backend_audit.catalog import Catalog, RuleDoc
from backend_audit.findings import CATEGORIES, SEVERITIES, Finding, ScanResult

TOOL_NAME = "backend-audit"
#: where a user learns more about the tool (its package page; there is no separate docs site)
INFORMATION_URI = "https://pypi.org/project/backend-audit/"

#: highest first, for display
SEVERITIES_DESC = tuple(reversed(SEVERITIES))

#: our severity -> SARIF `level`
SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
#: our severity -> GitHub Actions workflow command
GITHUB_COMMAND = {"critical": "error", "high": "error", "medium": "warning", "low": "notice"}
#: our severity -> reviewdog rdjson severity
RDJSON_SEVERITY = {"critical": "ERROR", "high": "ERROR", "medium": "WARNING", "low": "INFO"}
#: our severity -> GitHub code scanning `security-severity` (CVSS-like score, 0.0-10.0) for BA3xx rules
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}
#: our confidence -> GitHub code scanning `precision`
PRECISION = {"high": "high", "medium": "medium", "low": "low"}


def severity_order(severity: str) -> int:
    """0 for critical, 3 for low, 4 for anything unknown (sorts last)."""
    try:
        return SEVERITIES_DESC.index(severity)
    except ValueError:
        return len(SEVERITIES_DESC)


def sorted_findings(findings: Iterable[Finding]) -> list[Finding]:
    """By path, then position: the reading order."""
    return sorted(findings, key=Finding.sort_key)


def by_priority(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first, then by path and position: what to show when space is short."""
    return sorted(findings, key=lambda f: (severity_order(f.severity), *f.sort_key()))


def group_by_file(findings: Iterable[Finding]) -> list[tuple[str, list[Finding]]]:
    groups: dict[str, list[Finding]] = {}
    for f in sorted_findings(findings):
        groups.setdefault(f.path, []).append(f)
    return list(groups.items())


def counts(findings: Iterable[Finding]) -> dict[str, Counter]:
    """category -> Counter(severity -> n), with every known category present (zeros included)."""
    table: dict[str, Counter] = {c: Counter() for c in CATEGORIES}
    for f in findings:
        table.setdefault(f.category, Counter())[f.severity] += 1
    return table


def severity_totals(findings: Iterable[Finding]) -> Counter:
    return Counter(f.severity for f in findings)


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def rule_doc(catalog: Catalog | None, rule_id: str) -> RuleDoc | None:
    if catalog is None:
        return None
    return catalog.rules.get(rule_id)


def rule_label(catalog: Catalog | None, rule_id: str) -> str:
    """`BA101 n-plus-one-loop`, or just the id when the catalog does not document it."""
    doc = rule_doc(catalog, rule_id)
    return f"{rule_id} {doc.name}" if doc else rule_id


# --- excerpts ---------------------------------------------------------------------------------

_EXCERPT_LINE = re.compile(r"^\s*(\d+) \| ?(.*)$")


def excerpt_lines(excerpt: str) -> list[tuple[int, str]]:
    """Parse the engine's pre-rendered excerpt (`"   12 | code"` lines) into (line, code) pairs."""
    out: list[tuple[int, str]] = []
    for raw in excerpt.splitlines():
        m = _EXCERPT_LINE.match(raw)
        if m:
            out.append((int(m.group(1)), m.group(2)))
    return out


def flagged(f: Finding, line: int) -> bool:
    return f.line <= line <= max(f.line, f.end_line)


def marked_excerpt(f: Finding, marker: str = ">") -> list[str]:
    """The excerpt with the flagged lines marked in the gutter: `>   12 | code`."""
    pairs = excerpt_lines(f.excerpt)
    if not pairs:
        return []
    width = max(len(str(n)) for n, _ in pairs)
    blank = " " * len(marker)
    return [f"{marker if flagged(f, n) else blank} {n:>{width}} | {code}" for n, code in pairs]


def source_line(f: Finding) -> str | None:
    """The text of the finding's first line, when the excerpt carries it."""
    for n, code in excerpt_lines(f.excerpt):
        if n == f.line:
            return code
    return None


def language_of(path: str) -> str:
    """A fenced-code / lexer language name for a file path."""
    suffix = PurePosixPath(path).suffix.lower()
    if suffix == ".py":
        return "python"
    if suffix == ".sql":
        return "sql"
    if suffix in (".html", ".jinja", ".jinja2", ".j2"):
        return "jinja"
    return "text"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_BUT_CR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean(text: str, *, keep_cr: bool = False) -> str:
    """Show control characters (ESC above all) as `\\x1b` so scanned code cannot drive a terminal
    or a CI log. Newlines and tabs are kept; CR too when the format escapes it (`keep_cr`)."""
    pattern = _CONTROL_BUT_CR if keep_cr else _CONTROL
    return pattern.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def one_line(text: str) -> str:
    """Collapse newlines and runs of whitespace (for table cells and one-line summaries)."""
    return " ".join(clean(text).split())


# --- Markdown ---------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def md_escape(text: str) -> str:
    """Escape text so GitHub Markdown shows it literally (no HTML, links, emphasis, tables).

    `@name` (a decorator in a message) would notify a GitHub user: a zero-width space after the
    `@` keeps it from being a mention.
    """
    return _escape_raw(one_line(text))


def _escape_raw(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text).replace("@", "@\u200b")


def md_code(text: str) -> str:
    """An inline code span that holds any text, backticks included."""
    text = one_line(text)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_inline(text: str) -> str:
    """A message as Markdown: its `code spans` stay code, everything else is escaped.

    Analyzer messages quote code in backticks; a message with unbalanced backticks is escaped
    whole.
    """
    text = one_line(text)
    parts = text.split("`")
    if len(parts) % 2 == 0:  # unbalanced
        return _escape_raw(text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(md_code(part) if part else "\\`\\`")
        else:
            out.append(_escape_raw(part))
    return "".join(out)


def md_fence(body: str, language: str = "") -> str:
    """A fenced code block whose fence is longer than any backtick run inside it."""
    body = clean(body)
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{body}\n{fence}"


def location(path: str, line: int | None) -> str:
    return f"{path}:{line}" if line else path


def report_markdown(result: ScanResult) -> str | None:
    """The advisor's report as Markdown, or None when there is none or its renderer is missing.

    The advisor module is imported lazily: it is optional for the renderers, and a report that
    cannot be rendered must not cost the user the findings.
    """
    if not isinstance(result.report, dict):
        return None
    try:
        from backend_audit.advisor.render import report_markdown as render_report
    except Exception:  # noqa: BLE001 - a broken or missing advisor must not cost the findings
        return None
    try:
        text = render_report(result.report)
    except Exception:  # noqa: BLE001 - same: the report is advice, the findings stand alone
        return None
    return text if isinstance(text, str) and text.strip() else None


def path_prefix(root: str, base: str | None) -> str:
    """The scanned root relative to `base` (e.g. the GitHub workspace) as a `a/b/` prefix.

    Paths in findings are relative to the scanned root; consumers such as GitHub annotations want
    them relative to the repository. Empty when either is unknown or the root is not under base.
    """
    if not root or not base:
        return ""
    root_p, base_p = PurePosixPath(root.replace("\\", "/")), PurePosixPath(base.replace("\\", "/"))
    if not (root_p.is_absolute() and base_p.is_absolute()):
        return ""
    try:
        rel = root_p.relative_to(base_p)
    except ValueError:
        return ""
    return "" if str(rel) == "." else f"{rel.as_posix()}/"


def with_prefix(prefix: str, path: str) -> str:
    """`prefix + path`, leaving absolute paths alone."""
    if not prefix or path.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", path):
        return path
    return prefix + path


def short_ids(result: ScanResult) -> dict[int, str]:
    """`id(finding) -> "F<n>"`: the short ids the advisor's report uses to cite findings.

    The advisor numbers findings in sorted order and records each id's fingerprint under
    `report["findings"]`; that mapping wins when present, so the ids always match the report.
    """
    ordered = sorted_findings(result.findings)
    ids = {id(f): f"F{i}" for i, f in enumerate(ordered, 1)}
    mapping = result.report.get("findings") if isinstance(result.report, dict) else None
    if isinstance(mapping, dict):
        by_fingerprint = {v.get("fingerprint"): str(k) for k, v in mapping.items()
                          if isinstance(v, dict) and v.get("fingerprint")}
        for f in ordered:
            if f.fingerprint and f.fingerprint in by_fingerprint:
                ids[id(f)] = by_fingerprint[f.fingerprint]
    return ids


_MENTION = re.compile(r"(?<![\w`@])@(?=[A-Za-z0-9])")


def defuse_mentions(markdown: str) -> str:
    """Keep `@name` outside code from notifying GitHub users (a zero-width space after the `@`).

    For Markdown we did not escape ourselves (the advisor's report, which a model may have
    written): code blocks and code spans are left as they are.
    """
    out: list[str] = []
    fence = ""
    for line in markdown.split("\n"):
        stripped = line.strip()
        if fence:
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                fence = ""
            out.append(line)
            continue
        if stripped.startswith(("```", "~~~")):
            char = stripped[0]
            fence = stripped[: len(stripped) - len(stripped.lstrip(char))]
            out.append(line)
            continue
        parts = line.split("`")
        if len(parts) % 2 == 0:  # an unbalanced backtick: treat the whole line as text
            out.append(_MENTION.sub("@\u200b", line))
            continue
        out.append("`".join(part if i % 2 else _MENTION.sub("@\u200b", part) for i, part in enumerate(parts)))
    return "\n".join(out)
