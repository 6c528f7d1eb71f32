"""The one record every analyzer emits, and the result of a whole scan.

Positions are 1-based lines and 1-based columns counted in characters (not bytes), with `end_*`
pointing one past the last character, as SARIF and most editors expect. `path` is relative to
the scanned root with `/` separators.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

CATEGORIES = ("n-plus-one", "missing-index", "unvalidated-input", "blocking-io")
SEVERITIES = ("low", "medium", "high", "critical")  # ascending
CONFIDENCES = ("low", "medium", "high")  # ascending

#: rule id prefix -> category, the contract in DESIGN section 1
CATEGORY_BY_PREFIX = {"BA1": "n-plus-one", "BA2": "missing-index", "BA3": "unvalidated-input", "BA4": "blocking-io"}


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def category_of_rule(rule_id: str) -> str | None:
    return CATEGORY_BY_PREFIX.get(rule_id[:3])


@dataclass
class Related:
    """Another place that explains a finding: a query site, a model field, a step of a flow."""

    path: str
    line: int
    message: str
    column: int | None = None
    end_line: int | None = None
    end_column: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "line": self.line, "message": self.message}
        if self.column is not None:
            out["column"] = self.column
        if self.end_line is not None:
            out["end_line"] = self.end_line
        if self.end_column is not None:
            out["end_column"] = self.end_column
        return out


@dataclass
class Finding:
    rule: str
    category: str
    severity: str
    confidence: str
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    message: str
    related: list[Related] = field(default_factory=list)
    #: ordered steps source -> sink for data-flow rules (rendered as SARIF codeFlows)
    flow: list[Related] = field(default_factory=list)
    #: the enclosing function/class qualname (or another stable anchor); part of the fingerprint
    symbol: str = ""
    #: facts the advisor fills remediation texts with: model, field, call, chain, request_path...
    context: dict[str, Any] = field(default_factory=dict)
    #: filled by the engine from the source: a few lines around the location
    excerpt: str = ""
    #: filled by the engine: stable across line shifts and unrelated edits
    fingerprint: str = ""

    def sort_key(self) -> tuple:
        return (self.path, self.line, self.column, self.rule, self.message)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "category": self.category,
            "severity": self.severity,
            "confidence": self.confidence,
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "message": self.message,
            "related": [r.to_json() for r in self.related],
            "flow": [r.to_json() for r in self.flow],
            "symbol": self.symbol,
            "context": self.context,
            "fingerprint": self.fingerprint,
        }


_WS = re.compile(r"\s+")


def assign_fingerprints(findings: list[Finding], line_text: dict[tuple[str, int], str]) -> None:
    """Give each finding a fingerprint built from what survives edits elsewhere in the file.

    The fingerprint hashes the rule, the path, the enclosing symbol and the whitespace-normalised
    text of the flagged line; identical tuples are told apart by their order of occurrence. Line
    numbers never enter it, so inserting lines above a finding does not change it.
    """
    seen: dict[str, int] = {}
    for f in sorted(findings, key=Finding.sort_key):
        text = _WS.sub(" ", line_text.get((f.path, f.line), "")).strip()
        base = "\x1f".join((f.rule, f.path, f.symbol, text))
        n = seen.get(base, 0)
        seen[base] = n + 1
        f.fingerprint = hashlib.sha256(f"{base}\x1f{n}".encode()).hexdigest()[:32]


@dataclass
class Diagnostic:
    """A problem with an input file or the run itself that did not stop the scan."""

    path: str
    kind: str  # e.g. "syntax-error", "needs-newer-python", "binary-file", "decode-error", "too-large", "too-complex", "unreadable", "symlink-loop"
    message: str
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if out["line"] is None:
            del out["line"]
        return out


@dataclass
class ScanResult:
    """Everything a renderer needs."""

    root: str
    findings: list[Finding]
    errors: list[Diagnostic] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    #: the advisor's report (see backend_audit.advisor), a JSON-ready dict, or None when not built
    report: dict[str, Any] | None = None
    #: project facts the analyzers found (frameworks, dialect, async stack): for the advisor
    facts: dict[str, Any] = field(default_factory=dict)
    #: the scan's summaries and index, kept alive with the result: freeing them is left to the
    #: end of the process (see cli.run) rather than paid for when the scan function returns
    internals: Any = field(default=None, repr=False, compare=False)
