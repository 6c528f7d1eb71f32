"""The scan pipeline: discover -> summarize (parallel, cached) -> index -> analyzers -> filters."""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from backend_audit import __version__
from backend_audit.analyzers import REGISTRY, load_analyzers
from backend_audit.analyzers.base import AnalysisContext, Analyzer, FileUnit
from backend_audit.cache import SEAL_SIZE, SummaryCache, content_key, encode_entry, seal
from backend_audit.catalog import Catalog
from backend_audit.discovery import DEFAULT_EXCLUDES, DEFAULT_MAX_BYTES, SourceFile, discover
from backend_audit.findings import Diagnostic, Finding, ScanResult, assign_fingerprints
from backend_audit.index.project import ProjectIndex
from backend_audit.parsing.source import TOO_COMPLEX, SourceProblem, decode_source, parse_python
from backend_audit.pickling import positional_pickle
from backend_audit.parsing.summary import LineIndex, ModuleSummary, find_suppressions, summarize_module

#: below this many files to summarize, a process pool costs more than it saves
POOL_THRESHOLD = 24


@positional_pickle
@dataclass
class FileSummary:
    """What the cache stores for one file: a pure function of its kind and bytes."""

    kind: str
    module: ModuleSummary | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    problem: tuple[str, str, int | None] | None = None  # (kind, message, line)
    suppressions: dict[int, list[str]] = field(default_factory=dict)
    collect_errors: list[tuple[str, str]] = field(default_factory=list)  # (analyzer, message)


@dataclass
class ScanOptions:
    paths: list[str] = field(default_factory=lambda: ["."])
    exclude: tuple[str, ...] = DEFAULT_EXCLUDES
    max_file_bytes: int = DEFAULT_MAX_BYTES
    jobs: int = 0  # 0: all cores
    use_cache: bool = True
    cache_dir: str | None = None
    analyzer_options: dict[str, Any] = field(default_factory=dict)


# --- per-file work (runs in worker processes) ------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(catalog: Catalog, analyzers: list[Analyzer]) -> None:
    gc.disable()  # see scan(): per-file work builds no garbage cycles worth the collector's passes
    _WORKER["catalog"] = catalog
    _WORKER["analyzers"] = analyzers


def summarize_file(kind: str, data: bytes, catalog: Catalog, analyzers: list[Analyzer]) -> FileSummary:
    """Everything the later stages need from one file. Must depend only on its arguments."""
    result = FileSummary(kind=kind)
    try:
        text = decode_source(data, python=kind == "python")
    except SourceProblem as exc:
        result.problem = (exc.kind, exc.message, exc.line)
        return result
    lines = LineIndex(text)
    tree = None
    if kind == "python":
        try:
            tree = parse_python(text, "<file>")
        except SourceProblem as exc:
            result.problem = (exc.kind, exc.message, exc.line)
            return result
        try:
            result.module = summarize_module(tree, text, lines)
        except RecursionError:  # parsed, but deeper than the summary's recursion can follow
            result.problem = ("too-complex", TOO_COMPLEX, None)
            return result
        result.suppressions = result.module.suppressions
    else:
        result.suppressions = find_suppressions(text)
    unit = FileUnit(kind=kind, text=text, lines=lines, catalog=catalog, tree=tree, module=result.module)
    for analyzer in analyzers:
        try:
            facts = analyzer.collect(unit)
        except Exception as exc:  # a collector bug must not lose the file for the other analyzers
            if os.environ.get("BACKEND_AUDIT_DEBUG"):
                raise
            result.collect_errors.append((analyzer.name, f"{type(exc).__name__}: {exc}"))
            continue
        if facts is not None:
            result.facts[analyzer.name] = facts
    return result


def _summarize_encoded(job: tuple[str, bytes]) -> bytes:
    """Summarize one file in a worker; pickled and sealed once, for the pipe and for the cache."""
    kind, data = job
    return seal(encode_entry(summarize_file(kind, data, _WORKER["catalog"], _WORKER["analyzers"])))


# --- the scan --------------------------------------------------------------------------------
ProgressFn = Callable[[str, int, int], None]  # (phase, done, total)


_CODE_DIGEST: list[str] = []


def code_digest() -> str:
    """A digest of the package's own code: a changed analyzer never reads another build's cache."""
    if not _CODE_DIGEST:
        import hashlib

        h = hashlib.blake2b(digest_size=6)
        package = Path(__file__).resolve().parent
        for path in sorted(package.rglob("*.py")):
            h.update(path.relative_to(package).as_posix().encode())
            h.update(path.read_bytes())
        _CODE_DIGEST.append(h.hexdigest())
    return _CODE_DIGEST[0]


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _project_key(options: ScanOptions, catalog: Catalog, analyzer_names: list[str],
                 keys: list[tuple[str, str]]) -> str:
    """Everything the findings of a scan depend on: the files' contents, code, catalog, options."""
    import hashlib

    h = hashlib.blake2b(digest_size=20)
    h.update(f"{__version__}|{code_digest()}|{catalog.digest}|{','.join(analyzer_names)}|".encode())
    h.update(repr(sorted(options.analyzer_options.items(), key=lambda kv: kv[0])).encode())
    for rel, key in keys:
        h.update(f"\0{rel}\0{key}".encode())
    return "project-" + h.hexdigest()


def scan(options: ScanOptions, catalog: Catalog, progress: ProgressFn | None = None,
         analyzers: list[Analyzer] | None = None) -> ScanResult:
    """Run the whole pipeline.

    The cyclic garbage collector is paused for the scan: the summaries of a large project are
    millions of small objects that stay alive until the end, and with the collector on, its
    passes over them cost more than the analysis itself (5.2 s instead of 2.9 s on Django).
    Nothing the scan builds relies on cycle collection.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _scan(options, catalog, progress, analyzers)
    finally:
        # everything allocated meanwhile would otherwise be examined by the very next collection
        gc.freeze()
        if enabled:
            gc.enable()


def _scan(options: ScanOptions, catalog: Catalog, progress: ProgressFn | None,
          analyzers: list[Analyzer] | None) -> ScanResult:
    started = time.perf_counter()
    found = discover(options.paths, exclude=options.exclude, max_bytes=options.max_file_bytes)
    phases: dict[str, float] = {"discover": round(time.perf_counter() - started, 3)}
    root = found.root
    errors: list[Diagnostic] = list(found.diagnostics)

    cache = None
    if options.use_cache:
        cache_dir = Path(options.cache_dir or os.environ.get("BACKEND_AUDIT_CACHE_DIR") or root / ".backend_audit_cache")
        cache = SummaryCache(cache_dir, f"{__version__}-{code_digest()}", catalog.digest)

    raw: dict[str, bytes] = {}
    keys: list[tuple[SourceFile, str]] = []
    for f in found.files:
        try:
            data = f.path.read_bytes()
        except OSError as exc:
            kind = "symlink-loop" if exc.errno == 40 else "unreadable"
            errors.append(Diagnostic(f.rel, kind, f"cannot read: {exc.strerror or exc}"))
            continue
        raw[f.rel] = data
        keys.append((f, content_key(f.kind, data)))

    # an unchanged project: the findings are a pure function of what the key covers
    names = [a.name for a in analyzers] if analyzers is not None else sorted(REGISTRY)
    project_key = _project_key(options, catalog, names, [(f.rel, k) for f, k in keys])
    if cache is not None:
        hit = cache.get(project_key)
        if isinstance(hit, CachedProject):
            stats = {"files": len(found.files), "python_files": hit.python_files,
                     "seconds": round(time.perf_counter() - started, 3), "cache_hits": len(keys),
                     "cache_misses": 0, "analyzer_seconds": {}, "project_cache": True}
            return ScanResult(root=str(root), findings=hit.findings, errors=errors + hit.errors,
                              stats=stats, facts=dict(hit.facts))

    load_errors: list[Diagnostic] = []
    if analyzers is None:
        analyzers, problems = load_analyzers()
        load_errors = [Diagnostic("<scan>", "analyzer-error", p) for p in problems]
    summaries: dict[str, FileSummary] = {}
    todo: list[tuple[SourceFile, str]] = []
    for f, key in keys:
        cached = cache.get(key) if cache else None
        if isinstance(cached, FileSummary):
            summaries[f.rel] = cached
        else:
            todo.append((f, key))

    phases["read"] = round(time.perf_counter() - started - sum(phases.values()), 3)
    total = len(todo)
    if progress:
        progress("summarize", 0, total)
    jobs = options.jobs or default_jobs()
    if total >= POOL_THRESHOLD and jobs > 1:
        ctx = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
        fresh: list[tuple[str, bytes]] = []
        with ProcessPoolExecutor(max_workers=min(jobs, total), mp_context=ctx,
                                 initializer=_init_worker, initargs=(catalog, analyzers)) as pool:
            chunk = max(1, min(4, total // (jobs * 8) or 1))
            # largest first: the last chunks are small files, so no worker finishes long after the other
            todo.sort(key=lambda item: -len(raw[item[0].rel]))
            results = pool.map(_summarize_encoded, [(f.kind, raw[f.rel]) for f, _ in todo], chunksize=chunk)
            for i, ((f, key), sealed) in enumerate(zip(todo, results), 1):
                summaries[f.rel] = pickle.loads(memoryview(sealed)[SEAL_SIZE:])
                fresh.append((key, sealed))
                if progress:
                    progress("summarize", i, total)
        if cache is not None:
            cache.put_many(fresh)  # one pack file instead of a thousand small ones
    else:
        for i, (f, key) in enumerate(todo, 1):
            summary = summarize_file(f.kind, raw[f.rel], catalog, analyzers)
            summaries[f.rel] = summary
            if cache:
                cache.put_encoded(key, encode_entry(summary))
            if progress:
                progress("summarize", i, total)

    # discovery order, whichever files came from the cache: the analyses never see the difference
    summaries = {f.rel: summaries[f.rel] for f, _ in keys if f.rel in summaries}
    file_errors: list[Diagnostic] = list(load_errors)
    for rel in sorted(summaries):
        s = summaries[rel]
        if s.problem:
            kind, message, line = s.problem
            file_errors.append(Diagnostic(rel, kind, message, line))
        for name, message in s.collect_errors:
            file_errors.append(Diagnostic(rel, "analyzer-error", f"{name} could not read this file: {message}"))

    phases["summarize"] = round(time.perf_counter() - started - sum(phases.values()), 3)
    python = {rel: s.module for rel, s in summaries.items() if s.module is not None}
    index = ProjectIndex(python)
    facts: dict[str, dict[str, Any]] = {}
    for rel, s in summaries.items():
        for name, value in s.facts.items():
            facts.setdefault(name, {})[rel] = value
    ctx = AnalysisContext(root=str(root), index=index, catalog=catalog, facts=facts,
                          kinds={rel: s.kind for rel, s in summaries.items()},
                          options=options.analyzer_options)
    timings: dict[str, float] = {}
    phases["index"] = round(time.perf_counter() - started - sum(phases.values()), 3)
    findings = _run_analyzers(analyzers, ctx, progress, timings, file_errors, jobs)
    phases["analyze"] = round(time.perf_counter() - started - sum(phases.values()), 3)

    findings = [f for f in findings if not _suppressed(f, summaries)]
    texts = _line_texts(findings, raw)
    assign_fingerprints(findings, texts)
    for f in findings:
        f.excerpt = _excerpt(f, raw)
    findings.sort(key=Finding.sort_key)
    stats = {
        "files": len(found.files),
        "python_files": len(python),
        "seconds": round(time.perf_counter() - started, 3),
        "cache_hits": len(keys) - total if cache else 0,  # files whose summary came from the cache
        "cache_misses": total,
        "analyzer_seconds": timings,
        "phase_seconds": phases,
    }
    about = project_facts(index, ctx)
    if cache is not None:
        cache.put_encoded(project_key, encode_entry(CachedProject(findings, file_errors, len(python), about)))
    return ScanResult(root=str(root), findings=findings, errors=errors + file_errors, stats=stats, facts=about,
                      internals=(summaries, index, ctx))


@dataclass
class CachedProject:
    """The outcome of a whole scan, stored under the project key."""

    findings: list[Finding]
    errors: list[Diagnostic]
    python_files: int
    facts: dict[str, Any]


#: import prefixes that tell which stack a project uses (for the advisor's project facts)
_FRAMEWORK_IMPORTS = {
    "django": "Django", "rest_framework": "Django REST framework", "flask": "Flask", "fastapi": "FastAPI",
    "starlette": "Starlette", "sqlalchemy": "SQLAlchemy", "alembic": "Alembic", "aiohttp": "aiohttp",
    "celery": "Celery", "asyncpg": "asyncpg", "psycopg2": "psycopg2", "psycopg": "psycopg",
    "pymysql": "PyMySQL", "redis": "redis-py", "channels": "Django Channels", "jinja2": "Jinja2",
}


def project_facts(index: ProjectIndex, ctx: AnalysisContext) -> dict[str, Any]:
    """JSON-ready facts about the scanned project: frameworks in use, async code, file counts."""
    frameworks: set[str] = set()
    async_functions = 0
    for summary in index.summaries.values():
        for target in summary.imports.values():
            head = target.split(".", 1)[0]
            if head in _FRAMEWORK_IMPORTS:
                frameworks.add(_FRAMEWORK_IMPORTS[head])
        async_functions += sum(1 for f in summary.functions.values() if f.is_async)
    kinds = list(ctx.kinds.values())
    return {
        "frameworks": sorted(frameworks),
        "async_functions": async_functions,
        "python_files": kinds.count("python"),
        "sql_files": kinds.count("sql"),
        "template_files": kinds.count("template"),
    }


#: below this many Python files, forking for the analysis costs more than it saves
PARALLEL_ANALYSIS_THRESHOLD = 200
#: relative cost of each analyzer's analyze() (seconds on Django 5.2's source), for balancing
ANALYZER_COST = {"n_plus_one": 0.23, "unvalidated_input": 0.19, "blocking_io": 0.06, "missing_index": 0.04}
_ANALYSIS: dict[str, Any] = {}


def _run_analyzers(analyzers: list[Analyzer], ctx: AnalysisContext, progress: ProgressFn | None,
                   timings: dict[str, float], errors: list[Diagnostic], jobs: int = 1) -> list[Finding]:
    """Run every analyzer over the index; on a large project, in cost-balanced groups at once.

    The analyzers are independent of each other once the index exists, so with more than one
    core the parent runs the first group itself while forked children run the others, sharing
    the parent's index copy-on-write (nothing is pickled on the way in; only findings come back).
    """
    fork = "fork" in multiprocessing.get_all_start_methods()
    if jobs < 2 or len(analyzers) < 2 or not fork or len(ctx.index.summaries) < PARALLEL_ANALYSIS_THRESHOLD:
        return _analyze_group(analyzers, ctx, progress, timings, errors)
    groups: list[list[Analyzer]] = [[] for _ in range(min(jobs, len(analyzers)))]
    load = [0.0] * len(groups)
    for analyzer in sorted(analyzers, key=lambda a: -ANALYZER_COST.get(a.name, 1.0)):
        lightest = load.index(min(load))  # longest-processing-time-first scheduling
        groups[lightest].append(analyzer)
        load[lightest] += ANALYZER_COST.get(analyzer.name, 1.0)
    _ANALYSIS["ctx"] = ctx
    _ANALYSIS["groups"] = groups
    if progress:
        progress("analyze", 0, len(analyzers))
    findings: list[Finding] = []
    try:
        with ProcessPoolExecutor(max_workers=len(groups) - 1, mp_context=multiprocessing.get_context("fork")) as pool:
            # the children fork now; the parent runs the first group meanwhile instead of idling
            futures = [pool.submit(_analyze_in_child, g) for g in range(1, len(groups))]
            findings.extend(_analyze_group(groups[0], ctx, None, timings, errors))
            for future in futures:
                found, group_timings, group_errors = future.result()
                findings.extend(found)
                timings.update(group_timings)
                errors.extend(group_errors)
    finally:
        _ANALYSIS.clear()
    return findings


def _analyze_in_child(group: int) -> tuple[list[Finding], dict[str, float], list[Diagnostic]]:
    timings: dict[str, float] = {}
    errors: list[Diagnostic] = []
    found = _analyze_group(_ANALYSIS["groups"][group], _ANALYSIS["ctx"], None, timings, errors)
    return found, timings, errors


def _analyze_group(analyzers: list[Analyzer], ctx: AnalysisContext, progress: ProgressFn | None,
                   timings: dict[str, float], errors: list[Diagnostic]) -> list[Finding]:
    findings: list[Finding] = []
    for analyzer in analyzers:
        if progress:
            progress(f"analyze:{analyzer.name}", 0, 1)
        t0 = time.perf_counter()
        try:
            findings.extend(analyzer.analyze(ctx))
        except Exception as exc:  # one broken analyzer must not hide the others' findings
            if os.environ.get("BACKEND_AUDIT_DEBUG"):
                raise
            errors.append(Diagnostic("<scan>", "analyzer-error",
                                     f"the {analyzer.name} analyzer failed: {type(exc).__name__}: {exc}"))
        timings[analyzer.name] = round(time.perf_counter() - t0, 4)
    return findings


def _suppressed(f: Finding, summaries: dict[str, FileSummary]) -> bool:
    s = summaries.get(f.path)
    if s is None:
        return False
    rules = s.suppressions.get(f.line)
    if rules is None:
        return False
    return not rules or f.rule in rules


def _line_texts(findings: list[Finding], raw: dict[str, bytes]) -> dict[tuple[str, int], str]:
    out: dict[tuple[str, int], str] = {}
    lines_of: dict[str, list[str]] = {}
    for f in findings:
        if f.path not in lines_of:
            data = raw.get(f.path, b"")
            lines_of[f.path] = data.decode("utf-8", "replace").splitlines()
        lines = lines_of[f.path]
        out[(f.path, f.line)] = lines[f.line - 1] if 0 < f.line <= len(lines) else ""
    return out


def _excerpt(f: Finding, raw: dict[str, bytes], context: int = 2) -> str:
    lines = raw.get(f.path, b"").decode("utf-8", "replace").splitlines()
    start = max(1, f.line - context)
    end = min(len(lines), max(f.end_line, f.line) + context)
    return "\n".join(f"{n:>5} | {lines[n - 1]}" for n in range(start, end + 1))
