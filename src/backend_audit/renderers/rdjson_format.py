"""`--format rdjson`: reviewdog's Diagnostic Format (`reviewdog -f=rdjson`).

One `DiagnosticResult` with a diagnostic per finding: location (path and range; rdjson columns
count UTF-8 bytes, so character columns are converted with the excerpt's copy of the line),
severity, `code` {value, url}, `source` {name, url} and `related_locations`. File diagnostics
are added as WARNING diagnostics with the code `backend-audit/<kind>`. Paths stay relative to the
scanned root, prefixed with the root's path from `base_dir` (default: the working directory, where
reviewdog runs) when the root lies inside it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from backend_audit.catalog import Catalog
from backend_audit.findings import Diagnostic, Finding, Related, ScanResult
from backend_audit.renderers.common import (
    INFORMATION_URI,
    RDJSON_SEVERITY,
    TOOL_NAME,
    excerpt_lines,
    path_prefix,
    rule_doc,
    sorted_findings,
    with_prefix,
)


def byte_column(line_text: str | None, column: int) -> int:
    """A 1-based character column as a 1-based UTF-8 byte column."""
    if line_text is None or column <= 1:
        return max(1, column)
    head = line_text[: column - 1]
    return len(head.encode("utf-8")) + max(0, column - 1 - len(head)) + 1


def _position(lines: dict[int, str], line: int, column: int | None) -> dict[str, int]:
    pos = {"line": max(1, line)}
    if column and column >= 1:
        pos["column"] = byte_column(lines.get(line), column)
    return pos


def _range(lines: dict[int, str], line: int, column: int | None, end_line: int | None,
           end_column: int | None) -> dict[str, Any]:
    rng: dict[str, Any] = {"start": _position(lines, line, column)}
    if end_line and end_line >= line and end_column and column:
        rng["end"] = _position(lines, end_line, end_column)
    return rng


def _location(prefix: str, path: str, rng: dict[str, Any] | None) -> dict[str, Any]:
    loc: dict[str, Any] = {"path": with_prefix(prefix, path)}
    if rng:
        loc["range"] = rng
    return loc


def _related(prefix: str, r: Related, label: str = "") -> dict[str, Any]:
    rng = _range({}, r.line, r.column, r.end_line, r.end_column) if r.line and r.line >= 1 else None
    return {"message": f"{label}{r.message}", "location": _location(prefix, r.path, rng)}


def _diagnostic(f: Finding, catalog: Catalog, prefix: str) -> dict[str, Any]:
    lines = dict(excerpt_lines(f.excerpt))
    doc = rule_doc(catalog, f.rule)
    code: dict[str, str] = {"value": f.rule}
    if doc and doc.references:
        code["url"] = doc.references[0]
    diag: dict[str, Any] = {
        "message": f.message,
        "location": _location(prefix, f.path, _range(lines, f.line, f.column, f.end_line, f.end_column)),
        "severity": RDJSON_SEVERITY.get(f.severity, "WARNING"),
        "source": {"name": TOOL_NAME, "url": INFORMATION_URI},
        "code": code,
    }
    related = [_related(prefix, r) for r in f.related]
    related += [_related(prefix, step, f"data flow step {n}: ") for n, step in enumerate(f.flow, 1)]
    if related:
        diag["related_locations"] = related
    return diag


def _error(e: Diagnostic, prefix: str) -> dict[str, Any]:
    rng = {"start": {"line": e.line}} if e.line else None
    return {
        "message": e.message,
        "location": _location(prefix, e.path, rng),
        "severity": "WARNING",
        "source": {"name": TOOL_NAME, "url": INFORMATION_URI},
        "code": {"value": f"{TOOL_NAME}/{e.kind}"},
    }


def to_rdjson(result: ScanResult, catalog: Catalog, base_dir: str | None = None) -> dict[str, Any]:
    if base_dir is None:
        try:
            base_dir = os.getcwd()
        except OSError:
            base_dir = None
    prefix = path_prefix(result.root, base_dir)
    diagnostics = [_diagnostic(f, catalog, prefix) for f in sorted_findings(result.findings)]
    diagnostics += [_error(e, prefix) for e in result.errors]
    return {"source": {"name": TOOL_NAME, "url": INFORMATION_URI}, "diagnostics": diagnostics}


def render(result: ScanResult, catalog: Catalog, *, color: bool = False, base_dir: str | None = None) -> str:
    return json.dumps(to_rdjson(result, catalog, base_dir), indent=2, ensure_ascii=False) + "\n"
