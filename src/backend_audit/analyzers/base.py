"""The contract between the engine and the analyzers.

An analyzer has two halves:

* `collect(unit)` runs once per file, in a worker process, and returns picklable facts (or None).
  It must be a pure function of the file's text and the catalog: its result is cached by content.
  It gets the file's `ast` tree and the generic `ModuleSummary`; it never sees the path.
* `analyze(ctx)` runs once per scan over every file's facts and the project index, and returns
  findings. It never parses a file again.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, ClassVar

from backend_audit.catalog import Catalog
from backend_audit.findings import Finding, Related
from backend_audit.index.project import ProjectIndex
from backend_audit.parsing.summary import LineIndex, ModuleSummary


@dataclass
class FileUnit:
    """One file as a collector sees it."""

    kind: str  # "python", "sql" or "template"
    text: str
    lines: LineIndex
    catalog: Catalog
    tree: ast.Module | None = None  # python only
    module: ModuleSummary | None = None  # python only


@dataclass
class AnalysisContext:
    root: str
    index: ProjectIndex
    catalog: Catalog
    #: analyzer name -> {relative path -> the facts its collect() returned (None dropped)}
    facts: dict[str, dict[str, Any]]
    #: relative path -> "python" | "sql" | "template" for every scanned file
    kinds: dict[str, str]
    #: analyzer options from configuration ([tool.backend-audit.<analyzer>])
    options: dict[str, Any] = field(default_factory=dict)

    def facts_of(self, analyzer: str) -> dict[str, Any]:
        return self.facts.get(analyzer, {})

    def finding(self, rule: str, path: str, line: int, column: int, end_line: int, end_column: int,
                message: str, *, severity: str | None = None, confidence: str | None = None,
                related: list[Related] | None = None, flow: list[Related] | None = None,
                symbol: str = "", context: dict[str, Any] | None = None) -> Finding:
        """A finding with the rule's catalog defaults (category, severity, confidence) filled in.

        `column`/`end_column` are 0-based here (as in `ast` and the summaries); the finding
        stores them 1-based.
        """
        doc = self.catalog.rule(rule)
        return Finding(
            rule=rule, category=doc.category, severity=severity or doc.severity,
            confidence=confidence or doc.confidence, path=path, line=line, column=column + 1,
            end_line=end_line, end_column=end_column + 1, message=message, related=related or [],
            flow=flow or [], symbol=symbol, context=context or {},
        )


class Analyzer:
    name: ClassVar[str]  # key of its facts, e.g. "blocking_io"
    category: ClassVar[str]

    def collect(self, unit: FileUnit) -> Any:
        return None

    def analyze(self, ctx: AnalysisContext) -> list[Finding]:
        raise NotImplementedError

