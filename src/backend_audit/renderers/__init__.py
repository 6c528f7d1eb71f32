"""Renderers turn a `ScanResult` into one output format. Each module has `render(result, catalog, **opts) -> str`."""

from __future__ import annotations

import importlib

from backend_audit.catalog import Catalog
from backend_audit.findings import ScanResult

FORMATS = ("text", "json", "sarif", "github", "rdjson", "markdown")


def render(fmt: str, result: ScanResult, catalog: Catalog, *, color: bool = False) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    module = importlib.import_module(f"backend_audit.renderers.{fmt}_format")
    return module.render(result, catalog, color=color)
