"""`--format sarif`: SARIF 2.1.0 for GitHub code scanning and SARIF viewers.

One run. `tool.driver.rules` documents every rule that has a finding (help text and Markdown from
`rules/`), results point at the flagged region with a `%SRCROOT%`-relative URI, carry
`partialFingerprints` that survive line shifts, related locations (linked from the message so
GitHub shows them) and, for data-flow rules, a code flow. File diagnostics become
`toolExecutionNotifications` of the run's invocation. Columns count Unicode code points.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from backend_audit import __version__
from backend_audit.catalog import Catalog, RuleDoc
from backend_audit.findings import (
    Diagnostic,
    Finding,
    Related,
    ScanResult,
    category_of_rule,
)
from backend_audit.renderers.common import (
    INFORMATION_URI,
    PRECISION,
    SARIF_LEVEL,
    SECURITY_SEVERITY,
    TOOL_NAME,
    md_fence,
    one_line,
    path_prefix,
    rule_doc,
    sorted_findings,
    source_line,
    with_prefix,
)

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SRCROOT = "%SRCROOT%"
#: the key of our own fingerprint in `partialFingerprints`
FINGERPRINT_KEY = "backendAudit/v1"


def render(result: ScanResult, catalog: Catalog, *, color: bool = False, workspace: str | None = None) -> str:
    return json.dumps(to_sarif(result, catalog, workspace), indent=2, ensure_ascii=False) + "\n"


def to_sarif(result: ScanResult, catalog: Catalog, workspace: str | None = None) -> dict[str, Any]:
    """The SARIF log. `%SRCROOT%` is the scanned root, or the repository checkout when the root
    lies inside `workspace` (default `$GITHUB_WORKSPACE`), so code scanning finds the files."""
    if workspace is None:
        workspace = os.environ.get("GITHUB_WORKSPACE")
    prefix = path_prefix(result.root, workspace)
    base = workspace if prefix else result.root
    findings = sorted_findings(result.findings)
    rule_ids = sorted({f.rule for f in findings})
    index = {rid: i for i, rid in enumerate(rule_ids)}
    severity_of = {f.rule: f.severity for f in findings}
    rules = [_rule(rid, rule_doc(catalog, rid), severity_of[rid]) for rid in rule_ids]
    line_hashes = _line_hashes(findings)
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": TOOL_NAME, "version": __version__, "semanticVersion": __version__,
            "informationUri": INFORMATION_URI, "rules": rules,
        }},
        "invocations": [_invocation(result.errors, prefix)],
        "originalUriBaseIds": {SRCROOT: _root_base(base)},
        "results": [_result(f, index[f.rule], line_hashes[id(f)], prefix) for f in findings],
        "columnKind": "unicodeCodePoints",
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


# --- rules ------------------------------------------------------------------------------------

def _rule(rule_id: str, doc: RuleDoc | None, fallback_severity: str) -> dict[str, Any]:
    category = doc.category if doc else (category_of_rule(rule_id) or "")
    severity = doc.severity if doc else fallback_severity
    tags = [category] if category else []
    tags.append("security" if rule_id.startswith("BA3") else "performance")
    properties: dict[str, Any] = {"tags": tags, "category": category}
    if doc:
        properties["precision"] = PRECISION.get(doc.confidence, "medium")
    if rule_id.startswith("BA3"):
        properties["security-severity"] = SECURITY_SEVERITY.get(severity, "5.5")
    descriptor: dict[str, Any] = {"id": rule_id}
    if doc:
        descriptor.update({
            "name": doc.name,
            "shortDescription": {"text": one_line(doc.title)},
            "fullDescription": {"text": doc.description.strip()},
            "help": {"text": help_text(doc), "markdown": help_markdown(doc)},
        })
        if doc.references:
            descriptor["helpUri"] = doc.references[0]
    else:
        descriptor["shortDescription"] = {"text": f"{rule_id} ({category or 'unknown category'})"}
    descriptor["defaultConfiguration"] = {"level": SARIF_LEVEL.get(severity, "warning")}
    descriptor["properties"] = properties
    return descriptor


def _sections(doc: RuleDoc) -> list[tuple[str, str]]:
    return [("Why it matters", doc.why), ("How to fix", doc.fix), ("Trade-offs", doc.tradeoffs)]


def help_text(doc: RuleDoc) -> str:
    parts = [f"{doc.id} {doc.name}: {one_line(doc.title)}", doc.description.strip()]
    parts += [f"{title}:\n{body.strip()}" for title, body in _sections(doc)]
    parts.append(f"Example (flagged):\n{doc.example_bad.rstrip()}")
    parts.append(f"Example (fixed):\n{doc.example_good.rstrip()}")
    if doc.references:
        parts.append("References:\n" + "\n".join(f"- {r}" for r in doc.references))
    return "\n\n".join(parts) + "\n"


_SQL_START = re.compile(r"^\s*(--|(?:create|alter|select|insert|update|delete|drop|with)\b)", re.IGNORECASE)


def _example_language(example: str) -> str:
    return "sql" if _SQL_START.match(example) else "python"


def help_markdown(doc: RuleDoc) -> str:
    parts = [f"# {doc.id} {doc.name}: {one_line(doc.title)}", doc.description.strip()]
    parts += [f"## {title}\n\n{body.strip()}" for title, body in _sections(doc)]
    parts.append("## Example (flagged)\n\n" + md_fence(doc.example_bad.strip("\n"), _example_language(doc.example_bad)))
    parts.append("## Example (fixed)\n\n" + md_fence(doc.example_good.strip("\n"), _example_language(doc.example_good)))
    if doc.references:
        parts.append("## References\n\n" + "\n".join(f"- <{r}>" for r in doc.references))
    return "\n\n".join(parts) + "\n"


# --- results ----------------------------------------------------------------------------------

def artifact_uri(path: str) -> str:
    """A relative URI reference for a root-relative path: `/` kept, everything else escaped."""
    return quote(path.replace("\\", "/"), safe="/")


def _root_base(root: str) -> dict[str, Any]:
    base: dict[str, Any] = {"description": {"text": "The root folder of the scan."}}
    path = PurePath(root) if root else None
    if path is not None and path.is_absolute():
        uri = path.as_uri()
        base["uri"] = uri if uri.endswith("/") else uri + "/"
    return base


def _region(line: int | None, column: int | None = None, end_line: int | None = None,
            end_column: int | None = None) -> dict[str, Any] | None:
    if not line or line < 1:
        return None
    region: dict[str, Any] = {"startLine": line}
    start_col = column if column and column >= 1 else None
    if start_col:
        region["startColumn"] = start_col
    last = end_line if end_line and end_line >= line else line
    region["endLine"] = last
    if start_col and end_column and end_column >= 1 and (last > line or end_column >= start_col):
        region["endColumn"] = end_column
    return region


def _artifact(path: str, prefix: str) -> dict[str, Any]:
    pure = PurePath(path)
    if pure.is_absolute():  # e.g. a diagnostic about a path outside the root
        return {"uri": pure.as_uri()}
    return {"uri": artifact_uri(with_prefix(prefix, path)), "uriBaseId": SRCROOT}


def _physical(path: str, region: dict[str, Any] | None, prefix: str) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": _artifact(path, prefix)}
    if region:
        physical["region"] = region
    return physical


def _related_location(r: Related, prefix: str, loc_id: int | None = None) -> dict[str, Any]:
    loc: dict[str, Any] = {}
    if loc_id is not None:
        loc["id"] = loc_id
    loc["physicalLocation"] = _physical(r.path, _region(r.line, r.column, r.end_line, r.end_column), prefix)
    if r.message:
        loc["message"] = {"text": r.message}
    return loc


_LINK_LIKE = re.compile(r"\]\s*\(")


def message_text(message: str, related: list[Related]) -> str:
    """The message, with links to the related locations appended (GitHub shows only linked ones).

    Square brackets are escaped only when the text could otherwise be read as an embedded link
    (SARIF 3.11.6 allows literal brackets elsewhere, and GitHub then shows them unescaped).
    """
    text = message
    if _LINK_LIKE.search(text):
        text = re.sub(r"([\\\[\]])", r"\\\1", text)
    if related:
        links = ", ".join(f"[{_link_text(r)}]({i})" for i, r in enumerate(related, 1))
        text = f"{text} (related: {links})"
    return text


def _link_text(r: Related) -> str:
    return re.sub(r"([\\\[\]])", r"\\\1", f"{r.path}:{r.line}")


def _result(f: Finding, rule_index: int, line_hash: str, prefix: str) -> dict[str, Any]:
    res: dict[str, Any] = {
        "ruleId": f.rule,
        "ruleIndex": rule_index,
        "level": SARIF_LEVEL.get(f.severity, "warning"),
        "message": {"text": message_text(f.message, f.related)},
        "locations": [{"physicalLocation": _physical(f.path, _region(f.line, f.column, f.end_line, f.end_column),
                                                     prefix)}],
        "partialFingerprints": {"primaryLocationLineHash": line_hash},
    }
    if f.fingerprint:
        res["partialFingerprints"][FINGERPRINT_KEY] = f.fingerprint
    if f.related:
        res["relatedLocations"] = [_related_location(r, prefix, i) for i, r in enumerate(f.related, 1)]
    if f.flow:
        steps = [{"location": _related_location(step, prefix), "executionOrder": n}
                 for n, step in enumerate(f.flow, 1)]
        res["codeFlows"] = [{"threadFlows": [{"locations": steps}]}]
    props: dict[str, Any] = {"category": f.category, "severity": f.severity, "confidence": f.confidence}
    if f.symbol:
        props["symbol"] = f.symbol
    res["properties"] = props
    return res


def _line_hashes(findings: list[Finding]) -> dict[int, str]:
    """`primaryLocationLineHash` per finding: a hash of the flagged line's text, `:n` for repeats.

    Like GitHub's own, it hashes the line's content (whitespace-normalised), not its number, and
    numbers identical lines in one file by occurrence, so it survives edits above the finding.
    Without the source line (no excerpt) it falls back to our own fingerprint.
    """
    seen: dict[tuple[str, str], int] = {}
    out: dict[int, str] = {}
    for f in findings:
        text = source_line(f)
        basis = " ".join(text.split()) if text is not None else f"{f.rule}\x1f{f.fingerprint or f.message}"
        digest = hashlib.sha256(basis.encode("utf-8")).hexdigest()[:16]
        key = (f.path, digest)
        n = seen.get(key, 0) + 1
        seen[key] = n
        out[id(f)] = f"{digest}:{n}"
    return out


# --- invocation -------------------------------------------------------------------------------

def _invocation(errors: list[Diagnostic], prefix: str) -> dict[str, Any]:
    notes = []
    for e in errors:
        note: dict[str, Any] = {
            "level": "warning",
            "message": {"text": f"{e.path}: {e.message}" if e.path else e.message},
            "descriptor": {"id": e.kind},
        }
        if e.path:
            note["locations"] = [{"physicalLocation": _physical(e.path, _region(e.line), prefix)}]
        notes.append(note)
    return {"executionSuccessful": True, "toolExecutionNotifications": notes}
