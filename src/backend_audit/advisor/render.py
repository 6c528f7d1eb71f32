"""The report as Markdown: the text renderer prints it with rich, the markdown output and the PR
comment carry it as is. Tolerant of partial reports (missing keys render as nothing)."""

from __future__ import annotations

from typing import Any

_PRIORITY_LABEL = {"P0": "fix now", "P1": "this sprint", "P2": "schedule", "P3": "when convenient"}
_EFFORT_LABEL = {"S": "small", "M": "medium", "L": "large"}
#: sections whose text often repeats across items of one rule: shown once, then referred to
_REPEATABLE = ("tradeoffs", "alternatives", "tests", "rollout", "monitoring")
_SECTIONS = (("impact", "Impact"), ("fix", "Fix"), ("tradeoffs", "Trade-offs"), ("alternatives", "Alternatives"),
             ("tests", "Tests to add"), ("rollout", "Rollout"), ("monitoring", "Monitoring"))


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _locations(item: dict[str, Any]) -> str:
    locs = item.get("locations") or []
    parts = []
    for loc in locs[:10]:
        if isinstance(loc, dict) and loc.get("path"):
            label = f"`{loc['path']}:{loc.get('line', '?')}`"
            if loc.get("id"):
                label += f" ({loc['id']})"
            parts.append(label)
    if len(locs) > 10:
        parts.append(f"and {len(locs) - 10} more")
    return ", ".join(parts)


#: items shown in full; the rest are listed one line each (the JSON report always has them all)
DETAIL_LIMIT = 25


def report_markdown(report: dict[str, Any] | None, heading_level: int = 3, detail_limit: int | None = DETAIL_LIMIT) -> str:
    """Markdown for a report built by `backend_audit.advisor.build_report` ('' for None).

    The caller supplies the section heading ("Remediation report"); items are headings of
    `heading_level` (### by default). The first `detail_limit` items are written out in full
    (None: all of them); the others follow as a one-line-per-item list."""
    if not isinstance(report, dict):
        return ""
    h = "#" * max(1, min(heading_level, 6))
    out: list[str] = []
    source = report.get("source")
    if source in ("llm", "mixed") and report.get("model"):
        by = f"Written by the persona model `{report['model']}` from the analyzers' findings"
        if source == "mixed":
            by += "; items marked *offline* come from the rule catalog"
        out += [f"_{by}._", ""]
    elif source == "offline":
        out += ["_Written offline from the rule catalog (no model was called)._", ""]
    summary = _text(report.get("summary"))
    if summary:
        out += [summary, ""]
    items = [i for i in report.get("items") or [] if isinstance(i, dict)]
    seen: dict[tuple[str, str], str] = {}  # (section, text) -> first item id that showed it
    detailed = items if detail_limit is None else items[: max(0, detail_limit)]
    for item in detailed:
        prio = item.get("priority", "")
        title = _text(item.get("title")) or "(untitled)"
        out.append(f"{h} {item.get('id', '')} [{prio}] {title}".replace("  ", " "))
        meta = []
        if prio in _PRIORITY_LABEL:
            meta.append(f"**Priority:** {prio} ({_PRIORITY_LABEL[prio]})")
        if item.get("effort") in _EFFORT_LABEL:
            meta.append(f"**Effort:** {item['effort']} ({_EFFORT_LABEL[item['effort']]})")
        ids = item.get("findings") or []
        if ids:
            meta.append("**Findings:** " + ", ".join(str(i) for i in ids))
        if item.get("rules"):
            meta.append("**Rules:** " + ", ".join(str(r) for r in item["rules"]))
        if item.get("source") == "offline" and source in ("llm", "mixed"):
            meta.append("*offline*")
        out += [" · ".join(meta), ""]
        where = _locations(item)
        if where:
            out += [f"**Where:** {where}", ""]
        for key, label in _SECTIONS:
            body = _text(item.get(key))
            if body and key in _REPEATABLE:
                first = seen.setdefault((key, body), str(item.get("id", "")))
                if first != str(item.get("id", "")) and first:
                    body = f"Same as {first}."
            if body:
                if "\n" in body or "```" in body:
                    out += [f"**{label}:**", "", body, ""]
                else:
                    out += [f"**{label}:** {body}", ""]
    rest = items[len(detailed):]
    if rest:
        out += [f"{h} Also to fix ({len(rest)} more)", "",
                "Same kinds of fixes as above; the JSON output (`--format json`) has every item in full.", ""]
        for item in rest:
            where = _locations(item)
            line = f"- **{item.get('id', '')}** [{item.get('priority', '')}] {_text(item.get('title'))}"
            if where:
                line += f" — {where}"
            out.append(line)
        out.append("")
    warnings = [w for w in report.get("warnings") or [] if isinstance(w, str)]
    if warnings:
        out.append("> " + "\n> ".join(f"Note: {w}" for w in warnings))
        out.append("")
    return "\n".join(out).rstrip() + "\n"
