"""One analyzer module per category; `load_analyzers()` is the registry the engine runs."""

from __future__ import annotations

import importlib
import os

from backend_audit.analyzers.base import Analyzer

#: module name under backend_audit.analyzers -> class name; one per category
REGISTRY = {
    "n_plus_one": "NPlusOneAnalyzer",
    "missing_index": "MissingIndexAnalyzer",
    "unvalidated_input": "UnvalidatedInputAnalyzer",
    "blocking_io": "BlockingIOAnalyzer",
}


def load_analyzers() -> tuple[list[Analyzer], list[str]]:
    """The registered analyzers, and a message for each one that could not be loaded.

    A broken analyzer must never cost the whole scan: the others still run, and the engine
    reports the message as a diagnostic. (BACKEND_AUDIT_DEBUG=1 raises instead.)
    """
    loaded: list[Analyzer] = []
    problems: list[str] = []
    for module_name, class_name in REGISTRY.items():
        full = f"backend_audit.analyzers.{module_name}"
        try:
            loaded.append(getattr(importlib.import_module(full), class_name)())
        except Exception as exc:
            if os.environ.get("BACKEND_AUDIT_DEBUG"):
                raise
            if isinstance(exc, ModuleNotFoundError) and exc.name == full:
                continue  # not part of this build
            problems.append(f"the {module_name} analyzer could not be loaded: {type(exc).__name__}: {exc}")
    return loaded, problems


def all_analyzers() -> list[Analyzer]:
    return load_analyzers()[0]
