"""`--format github`: GitHub Actions workflow commands, one annotation per finding.

`::error file=app/views.py,line=12,endLine=12,col=9,endColumn=30,title=BA101 ...::message`.
Severity maps to error (critical, high), warning (medium) or notice (low). Data and properties
are escaped as the Actions runner requires, so a message can never end the command early or start
a new one. Paths are made relative to `$GITHUB_WORKSPACE` when the scanned root lies inside it.
Annotations are written most severe first, because GitHub shows only the first few per step.
"""

from __future__ import annotations

import os

from backend_audit.catalog import Catalog
from backend_audit.findings import Diagnostic, Finding, ScanResult
from backend_audit.renderers.common import (
    GITHUB_COMMAND,
    TOOL_NAME,
    by_priority,
    clean,
    path_prefix,
    plural,
    rule_label,
    with_prefix,
)


def escape_data(text: str) -> str:
    """The message part: `%`, CR and LF are percent-encoded."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value: also `:` and `,`, which would end the value or the property list."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, properties: dict[str, object], message: str) -> str:
    props = ",".join(f"{key}={escape_property(clean(str(value), keep_cr=True))}" for key, value in properties.items())
    data = escape_data(clean(message, keep_cr=True))
    return f"::{name} {props}::{data}" if props else f"::{name}::{data}"


def _annotation(f: Finding, catalog: Catalog, prefix: str) -> str:
    line = max(1, f.line)
    end_line = max(line, f.end_line)
    props: dict[str, object] = {"file": with_prefix(prefix, f.path), "line": line, "endLine": end_line}
    # GitHub accepts columns only for a single-line range
    if end_line == line and f.column >= 1:
        props["col"] = f.column
        if f.end_column > f.column:
            props["endColumn"] = f.end_column
    props["title"] = f"{rule_label(catalog, f.rule)} ({f.severity}, {f.category})"
    lines = [f.message]
    lines += [f"related: {with_prefix(prefix, r.path)}:{r.line} {r.message}".rstrip() for r in f.related]
    lines += [f"flow {n}: {with_prefix(prefix, s.path)}:{s.line} {s.message}".rstrip() for n, s in enumerate(f.flow, 1)]
    return command(GITHUB_COMMAND.get(f.severity, "warning"), props, "\n".join(lines))


def _diagnostic(e: Diagnostic, prefix: str) -> str:
    props: dict[str, object] = {}
    if e.path:
        props["file"] = with_prefix(prefix, e.path)
        if e.line:
            props["line"] = e.line
    props["title"] = f"{TOOL_NAME}: {e.kind}"
    return command("warning", props, e.message)


def render(result: ScanResult, catalog: Catalog, *, color: bool = False, workspace: str | None = None) -> str:
    prefix = path_prefix(result.root, workspace if workspace is not None else os.environ.get("GITHUB_WORKSPACE"))
    out = [_annotation(f, catalog, prefix) for f in by_priority(result.findings)]
    out += [_diagnostic(e, prefix) for e in result.errors]
    out.append(f"{TOOL_NAME}: {plural(len(result.findings), 'finding')}, {plural(len(result.errors), 'diagnostic')}")
    return "\n".join(out) + "\n"
