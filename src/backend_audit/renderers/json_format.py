"""`--format json`: the stable contract of DESIGN section 4."""

from __future__ import annotations

import json

from backend_audit import __version__
from backend_audit.catalog import Catalog
from backend_audit.findings import ScanResult


def to_document(result: ScanResult) -> dict:
    return {
        "version": __version__,
        "findings": [f.to_json() for f in result.findings],
        "errors": [e.to_json() for e in result.errors],
        "report": result.report,
        "stats": result.stats,
    }


def render(result: ScanResult, catalog: Catalog, *, color: bool = False) -> str:
    return json.dumps(to_document(result), indent=2, ensure_ascii=False) + "\n"
