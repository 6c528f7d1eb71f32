"""Blocking I/O on the event loop (category `blocking-io`, rules BA401-BA404).

Modules, one job each:

* `analyzer`    the analyzer: what runs on the loop, direct hits (BA401/BA404), chains (BA402)
* `timeouts`    BA403, outbound HTTP calls without a timeout
* `django_orm`  which refs are synchronous Django ORM operations
* `entrypoints` request handlers and the request path (severity)
* `facts`       the per-file `collect()` facts the generic summary lacks (cheap regexes)
* `model`       the compiled `[catalog.blocking_io]` data (rules/blocking_io.toml)
* `patterns`    glob patterns over canonical refs
"""

from backend_audit.analyzers.blocking_io.analyzer import BlockingIOAnalyzer

__all__ = ["BlockingIOAnalyzer"]
