"""One analyzer module per category; `all_analyzers()` is the registry the engine runs."""

from __future__ import annotations

import importlib

from backend_audit.analyzers.base import Analyzer

#: module name under backend_audit.analyzers -> class name; one per category
REGISTRY = {
    "n_plus_one": "NPlusOneAnalyzer",
    "missing_index": "MissingIndexAnalyzer",
    "unvalidated_input": "UnvalidatedInputAnalyzer",
    "blocking_io": "BlockingIOAnalyzer",
}


def all_analyzers() -> list[Analyzer]:
    out: list[Analyzer] = []
    for module_name, class_name in REGISTRY.items():
        try:
            module = importlib.import_module(f"backend_audit.analyzers.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"backend_audit.analyzers.{module_name}":
                continue  # not built yet
            raise
        out.append(getattr(module, class_name)())
    return out
