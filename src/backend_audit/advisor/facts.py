"""Project facts for the model: frameworks, database dialect, async stack.

Derived defensively from what the scan left behind: the project index in `result.facts["index"]`
(module imports, async functions), plain JSON values other analyzers put in `result.facts`, and
keys of the findings' contexts. Anything that is not plain JSON (the index itself, the analysis
context) is never sent.
"""

from __future__ import annotations

import json
from typing import Any

from backend_audit.findings import ScanResult

FRAMEWORKS = {
    "django": "Django", "rest_framework": "Django REST framework", "flask": "Flask", "fastapi": "FastAPI",
    "starlette": "Starlette", "sqlalchemy": "SQLAlchemy", "alembic": "Alembic", "aiohttp": "aiohttp",
    "celery": "Celery", "pydantic": "pydantic", "marshmallow": "marshmallow", "ninja": "Django Ninja",
    "sanic": "Sanic", "tornado": "Tornado", "quart": "Quart", "litestar": "Litestar", "peewee": "peewee",
    "tortoise": "Tortoise ORM", "sqlmodel": "SQLModel", "graphene": "Graphene", "strawberry": "Strawberry",
}
DRIVERS = {
    "psycopg2": "postgresql", "psycopg": "postgresql", "asyncpg": "postgresql", "pg8000": "postgresql",
    "aiopg": "postgresql", "pymysql": "mysql", "MySQLdb": "mysql", "aiomysql": "mysql", "asyncmy": "mysql",
    "mysql": "mysql", "sqlite3": "sqlite", "aiosqlite": "sqlite", "cx_Oracle": "oracle", "oracledb": "oracle",
    "pymongo": "mongodb", "motor": "mongodb", "redis": "redis",
}
ASYNC = {
    "asyncio": "asyncio", "anyio": "anyio", "trio": "trio", "uvicorn": "uvicorn", "httpx": "httpx",
    "aiohttp": "aiohttp", "asyncpg": "asyncpg", "aioredis": "aioredis", "motor": "motor",
    "aiofiles": "aiofiles", "uvloop": "uvloop", "channels": "Django Channels",
}
_CONTEXT_FACT_KEYS = ("framework", "dialect", "database", "orm", "driver")


def _plain(value: Any, depth: int = 0) -> Any:
    """`value` if it is small plain JSON, else None."""
    if depth > 4:
        return None
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value[:300]
    if isinstance(value, (list, tuple)):
        out = [_plain(v, depth + 1) for v in list(value)[:50]]
        return [v for v in out if v is not None]
    if isinstance(value, dict):
        out = {}
        for k, v in list(value.items())[:50]:
            if isinstance(k, str):
                pv = _plain(v, depth + 1)
                if pv is not None:
                    out[k] = pv
        return out
    return None


def _imported_roots(index: Any) -> set[str]:
    roots: set[str] = set()
    summaries = getattr(index, "summaries", None)
    if not isinstance(summaries, dict):
        return roots
    for summary in summaries.values():
        imports = getattr(summary, "imports", None)
        if isinstance(imports, dict):
            for ref in imports.values():
                if isinstance(ref, str) and ref and not ref.startswith("."):
                    roots.add(ref.split(".", 1)[0])
    return roots


#: display names the engine's `project_facts` uses -> import roots (for the classification above)
_DISPLAY_TO_ROOT = {
    "Django": "django", "Django REST framework": "rest_framework", "Flask": "flask", "FastAPI": "fastapi",
    "Starlette": "starlette", "SQLAlchemy": "sqlalchemy", "Alembic": "alembic", "aiohttp": "aiohttp",
    "Celery": "celery", "asyncpg": "asyncpg", "psycopg2": "psycopg2", "psycopg": "psycopg", "PyMySQL": "pymysql",
    "redis-py": "redis", "Django Channels": "channels", "Jinja2": "jinja2",
}
_CONSUMED = ("index", "context", "frameworks", "async_functions")


def project_facts(result: ScanResult) -> dict[str, Any]:
    """Frameworks, database dialects, other data stores and the async stack, as plain JSON."""
    facts: dict[str, Any] = {}
    raw = result.facts if isinstance(result.facts, dict) else {}
    index = raw.get("index")
    try:
        roots = _imported_roots(index)
    except Exception:
        roots = set()
    extra_frameworks: set[str] = set()
    named = raw.get("frameworks")
    if isinstance(named, (list, tuple)):
        for name in named:
            if isinstance(name, str) and name:
                root = _DISPLAY_TO_ROOT.get(name)
                if root:
                    roots.add(root)
                elif name.lower() in FRAMEWORKS or name.lower() in DRIVERS or name.lower() in ASYNC:
                    roots.add(name.lower())
                else:
                    extra_frameworks.add(name[:60])
    frameworks = {FRAMEWORKS[r] for r in roots if r in FRAMEWORKS} | extra_frameworks
    dialects = {DRIVERS[r] for r in roots if r in DRIVERS and DRIVERS[r] not in ("redis", "mongodb")}
    stores = sorted({DRIVERS[r] for r in roots if r in DRIVERS and DRIVERS[r] in ("redis", "mongodb")})
    async_libs = sorted({ASYNC[r] for r in roots if r in ASYNC})
    for f in result.findings:
        ctx = f.context if isinstance(f.context, dict) else {}
        for key in _CONTEXT_FACT_KEYS:
            v = ctx.get(key)
            if isinstance(v, str) and 0 < len(v) < 60:
                if key in ("dialect", "database"):
                    dialects.add(v.lower())
                elif key == "framework":
                    frameworks.add(v)
    n_async = raw.get("async_functions") if isinstance(raw.get("async_functions"), int) else 0
    if not n_async:
        try:
            functions = getattr(index, "functions", {}) or {}
            n_async = sum(1 for fn in functions.values() if getattr(fn, "is_async", False) is True)
        except Exception:
            n_async = 0
    if frameworks:
        facts["frameworks"] = sorted(frameworks)
    if dialects:
        facts["database_dialects"] = sorted(dialects)
    if stores:
        facts["other_datastores"] = stores
    if async_libs or n_async:
        facts["async_stack"] = {"libraries": async_libs, "async_functions": n_async}
    stats = result.stats if isinstance(result.stats, dict) else {}
    if isinstance(stats.get("python_files"), int):
        facts["python_files"] = stats["python_files"]
    for key, value in raw.items():
        if key in _CONSUMED or not isinstance(key, str):
            continue
        pv = _plain(value)
        if pv not in (None, {}, []):
            try:
                if len(json.dumps(pv)) > 2000:
                    continue
            except (TypeError, ValueError):
                continue
            facts.setdefault(key, pv)
    return facts
