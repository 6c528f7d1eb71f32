"""Behaviour of the blocking-I/O analyzer (BA401-BA404) beyond the fixture scores."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from backend_audit.analyzers.blocking_io import BlockingIOAnalyzer
from backend_audit.analyzers.blocking_io import model as catalog_model
from backend_audit.analyzers.blocking_io.patterns import PatternSet
from backend_audit.catalog import CatalogError, load_catalog
from backend_audit.engine import ScanOptions, scan


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def run(root: Path, files: dict[str, str], extra_catalogs: tuple = ()) -> list:
    write(root, files)
    catalog = load_catalog(extra_catalogs)
    result = scan(ScanOptions(paths=[str(root)], use_cache=False, jobs=1), catalog, analyzers=[BlockingIOAnalyzer()])
    return result.findings


def at(findings, path: str, line: int, rule: str | None = None):
    return [f for f in findings if f.path == path and f.line == line and (rule is None or f.rule == rule)]


def line_of(root: Path, rel: str, needle: str) -> int:
    for n, text in enumerate((root / rel).read_text().splitlines(), 1):
        if needle in text:
            return n
    raise AssertionError(f"{needle!r} not in {rel}")


CHAIN_PROJECT = {
    "shop/__init__.py": "",
    "shop/low.py": """
        import requests

        def fetch_table():
            return requests.get("https://rates.example/table", timeout=3).json()
    """,
    "shop/mid.py": """
        from .low import fetch_table

        def current_rate(currency):
            return fetch_table()[currency]
    """,
    "shop/top.py": """
        from .mid import current_rate

        def quote(sku, qty):
            return qty * current_rate("EUR")
    """,
    "shop/api.py": """
        import asyncio
        from fastapi import FastAPI
        from .top import quote

        app = FastAPI()

        @app.get("/quote")
        async def quote_endpoint(sku: str):
            total = quote(sku, 2)
            again = await asyncio.to_thread(quote, sku, 2)
            return {"total": total, "again": again}

        @app.get("/sync")
        def sync_endpoint(sku: str):
            return {"total": quote(sku, 2)}
    """,
}


def test_three_level_chain_across_modules_is_reported_at_the_coroutine_call(tmp_path):
    findings = run(tmp_path, CHAIN_PROJECT)
    line = line_of(tmp_path, "shop/api.py", "total = quote(sku, 2)")
    (f,) = at(findings, "shop/api.py", line)
    assert f.rule == "BA402" and f.category == "blocking-io"
    assert f.context["chain"] == ["shop.top.quote", "shop.mid.current_rate", "shop.low.fetch_table", "requests.get"]
    assert f.context["kind"] == "network" and f.context["request_path"] is True
    assert [(r.path, r.line) for r in f.related] == [
        ("shop/top.py", line_of(tmp_path, "shop/top.py", "current_rate(\"EUR\")")),
        ("shop/mid.py", line_of(tmp_path, "shop/mid.py", "fetch_table()[")),
        ("shop/low.py", line_of(tmp_path, "shop/low.py", "requests.get")),
    ]
    # offloaded call, the thread-pool `def` endpoint and the sync helpers themselves: silent
    assert {(x.path, x.line) for x in findings} == {("shop/api.py", line)}


def test_severity_is_higher_on_request_paths_than_in_scripts(tmp_path):
    findings = run(tmp_path, {
        "app/__init__.py": "",
        "app/web.py": """
            import time
            from fastapi import FastAPI
            app = FastAPI()

            @app.get("/")
            async def index():
                time.sleep(1)
                return {}
        """,
        "app/script.py": """
            import asyncio
            import time

            async def main():
                time.sleep(1)

            asyncio.run(main())
        """,
    })
    web = at(findings, "app/web.py", 7, "BA401")
    script = at(findings, "app/script.py", 5, "BA401")
    assert web and script
    assert web[0].severity == "high" and web[0].context["request_path"] is True
    assert script[0].severity == "medium" and script[0].context["request_path"] is False


def test_cycles_and_recursion_terminate_and_still_find_the_blocking_call(tmp_path):
    findings = run(tmp_path, {
        "w/__init__.py": "",
        "w/loop.py": """
            import sqlite3

            def ping_a(n):
                if n:
                    ping_b(n - 1)

            def ping_b(n):
                if n:
                    ping_a(n - 1)
                else:
                    store()

            def store():
                sqlite3.connect("x.db")

            def spin(n):
                return spin(n - 1) if n else 0

            def pure_a(n):
                return pure_b(n) if n else 0

            def pure_b(n):
                return pure_a(n - 1)
        """,
        "w/main.py": """
            from .loop import ping_a, spin, pure_a

            async def worker():
                ping_a(3)
                spin(5)
                pure_a(4)
        """,
    })
    assert [(f.line, f.rule) for f in findings if f.path == "w/main.py"] == [(4, "BA402")]
    (f,) = [f for f in findings if f.path == "w/main.py"]
    assert f.context["chain"] == ["w.loop.ping_a", "w.loop.ping_b", "w.loop.store", "sqlite3.connect"]


def test_user_catalog_file_adds_a_blocking_call(tmp_path):
    files = {
        "svc/__init__.py": "",
        "svc/main.py": """
            import legacy_sdk

            async def handler():
                legacy_sdk.Client().fetch_everything()
        """,
    }
    assert run(tmp_path / "a", files) == []
    extra = tmp_path / "team.toml"
    extra.write_text(textwrap.dedent("""
        [[catalog.blocking_io.calls]]
        kind = "network"
        alternative = "legacy_sdk.AsyncClient"
        patterns = ["legacy_sdk.Client().fetch_*"]
    """), encoding="utf-8")
    findings = run(tmp_path / "b", files, extra_catalogs=(str(extra),))
    assert [(f.path, f.line, f.rule) for f in findings] == [("svc/main.py", 4, "BA401")]
    assert findings[0].context["alternative"] == "legacy_sdk.AsyncClient"


def test_malformed_user_catalog_names_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[catalog.blocking_io.calls]]\nkind = "teleport"\nalternative = "x"\npatterns = ["a.b"]\n')
    catalog = load_catalog((str(bad),))
    with pytest.raises(CatalogError, match=r"catalog\.blocking_io\.calls\[\d+\]\.kind"):
        catalog_model.load(catalog)
    # in a scan, the mistake surfaces as a diagnostic naming the key, not as a traceback
    write(tmp_path / "p", {"m.py": "async def f():\n    pass\n"})
    result = scan(ScanOptions(paths=[str(tmp_path / "p")], use_cache=False, jobs=1), catalog,
                  analyzers=[BlockingIOAnalyzer()])
    assert any("calls[" in e.message and ".kind" in e.message for e in result.errors)


def test_offloaded_calls_lambdas_nested_defs_and_awaited_apis_are_silent(tmp_path):
    findings = run(tmp_path, {
        "svc/__init__.py": "",
        "svc/io.py": """
            import time

            def slow():
                time.sleep(1)
        """,
        "svc/main.py": """
            import asyncio
            import functools
            import time
            import anyio
            import httpx
            from asgiref.sync import sync_to_async
            from starlette.concurrency import run_in_threadpool
            from .io import slow

            async def handler():
                loop = asyncio.get_running_loop()
                await asyncio.to_thread(slow)
                await loop.run_in_executor(None, slow)
                await loop.run_in_executor(None, functools.partial(time.sleep, 1))
                await loop.run_in_executor(None, lambda: time.sleep(1))
                await sync_to_async(slow)()
                await anyio.to_thread.run_sync(slow)
                await run_in_threadpool(slow)

                def never_on_loop():
                    time.sleep(1)

                await asyncio.to_thread(never_on_loop)
                await asyncio.sleep(1)
                async with httpx.AsyncClient() as client:
                    await client.get("https://example.org")

                def called_inline():
                    slow()

                called_inline()
        """,
    })
    inline = line_of(tmp_path, "svc/main.py", "    called_inline()")
    assert [(f.path, f.line, f.rule) for f in findings] == [("svc/main.py", inline, "BA402")]
    assert findings[0].context["chain"][-2:] == ["svc.io.slow", "time.sleep"]


def test_receivers_are_tracked_by_type(tmp_path):
    findings = run(tmp_path, {
        "c/__init__.py": "",
        "c/client.py": """
            import httpx
            import psycopg2
            import requests

            class Search:
                def __init__(self):
                    self.client = httpx.Client(timeout=2)

                async def lookup(self, term):
                    return self.client.get("/q", params={"q": term})

            async def db():
                conn = psycopg2.connect("dbname=x")
                conn.cursor().execute("select 1")
                s = requests.Session()
                s.get("https://example.org", timeout=3)
                unknown.get("k")
        """,
    })
    got = {(f.line, f.rule, f.context.get("call")) for f in findings}
    assert got == {
        (10, "BA401", "httpx.Client().get"),
        (13, "BA401", "psycopg2.connect"),
        (14, "BA401", "psycopg2.connect().cursor().execute"),
        (16, "BA401", "requests.Session().get"),
    }


def test_timeouts_follow_each_librarys_defaults(tmp_path):
    findings = run(tmp_path, {
        "t.py": """
            import httpx
            import requests
            from urllib.request import urlopen

            def sync_job(url):
                requests.get(url)
                requests.get(url, timeout=5)
                requests.post(url, timeout=None)
                httpx.get(url)
                httpx.get(url, timeout=None)
                httpx.Client(timeout=None)
                httpx.Client()
                urlopen(url)
                urlopen(url, timeout=3)
                requests.get(url, **{"timeout": 3})
        """,
    })
    assert sorted((f.line, f.context["problem"]) for f in findings if f.rule == "BA403") == [
        (6, "no timeout"), (8, "timeout=None"), (10, "timeout=None"), (11, "timeout=None"), (13, "no timeout"),
    ]
    assert all(f.rule == "BA403" for f in findings)  # sync code: no event-loop finding


def test_django_orm_lazy_querysets_vs_evaluation(tmp_path):
    findings = run(tmp_path, {
        "lib/__init__.py": "",
        "lib/models.py": """
            from django.db import models

            class Book(models.Model):
                title = models.CharField(max_length=10, db_index=True)
                tags = models.ManyToManyField("Tag")
        """,
        "lib/views.py": """
            from .models import Book

            async def view(request):
                qs = Book.objects.filter(title="x").order_by("title")
                n = await qs.acount()
                titles = [b.title async for b in qs]
                first = await qs.afirst()
                rows = list(qs)
                for b in qs:
                    pass
                one = Book.objects.get(pk=1)
                book = await Book.objects.aget(pk=1)
                book.save()
                await book.asave()
                book.tags.add(1)
                return n, titles, first, rows, one
        """,
    })
    got = sorted((f.line, f.rule) for f in findings)
    assert got == [(8, "BA404"), (9, "BA404"), (11, "BA404"), (13, "BA404"), (15, "BA404")]
    by_line = {f.line: f for f in findings}
    assert "aget" in by_line[11].context["alternative"]
    assert "asave" in by_line[13].context["alternative"]


def test_analyzer_survives_odd_input(tmp_path):
    write(tmp_path, {
        "empty.py": "",
        "weird.py": "async def f(x=lambda: (yield)):\n    for a in x: pass\n    if x: pass\n",
        "ok.py": "async def f():\n    return [x for x in (lambda: 1)()]\n",
        "rec.py": "class A(A):\n    async def f(self):\n        self.f()\n        super().g()\n",
        "imports.py": "def f():\n    from . import (a,\n        b)\n    import a.b as c, d\n    c.x()\n",
        "data.sql": "select 1;\n",
    })
    result = scan(ScanOptions(paths=[str(tmp_path)], use_cache=False, jobs=1), load_catalog(),
                  analyzers=[BlockingIOAnalyzer()])
    assert not [e for e in result.errors if e.kind == "analyzer-error"], result.errors


@pytest.mark.parametrize("pattern, ref, expected", [
    ("psycopg2.connect()**.execute", "psycopg2.connect().cursor().execute", True),
    ("psycopg2.connect()**.execute", "psycopg2.connect().execute", True),
    ("psycopg2.connect()**.execute", "psycopg2.connect().cursor().executemany", False),
    ("redis.Redis().*", "redis.Redis().get", True),
    ("redis.Redis().*", "redis.Redis().pipeline().execute", False),
    ("os.spawn*", "os.spawnlp", True),
    ("requests.{get,post}", "requests.post", True),
    ("requests.{get,post}", "requests.patch", False),
    ("{a.b,c.d[]}.x", "c.d[].x", True),
])
def test_catalog_patterns(pattern, ref, expected):
    ps: PatternSet[bool] = PatternSet()
    ps.add(pattern, True)
    assert bool(ps.match(ref)) is expected


def test_every_rule_is_documented_with_remediation_keys_the_analyzer_fills():
    catalog = load_catalog()
    keys = {"call", "kind", "alternative", "chain", "request_path", "function", "library", "problem"}
    for rid in ("BA401", "BA402", "BA403", "BA404"):
        doc = catalog.rule(rid)
        assert doc.category == "blocking-io" and doc.remediation
        import string
        used = {name for _, name, _, _ in string.Formatter().parse(doc.remediation) if name}
        assert used <= keys, (rid, used - keys)


def test_django_truth_tests_and_builtins_evaluate_querysets(tmp_path):
    findings = run(tmp_path, {
        "lib/__init__.py": "",
        "lib/models.py": """
            from django.db import models

            class Book(models.Model):
                title = models.CharField(max_length=10, db_index=True)
        """,
        "lib/views.py": """
            from .models import Book

            async def view(request):
                qs = Book.objects.filter(title="x")
                if qs:
                    pass
                if qs is None:
                    pass
                if not Book.objects.filter(title="y"):
                    pass
                if await qs.aexists():
                    pass
                for i, b in enumerate(qs):
                    pass
                total = sum(b.pk for b in qs)
                return total
        """,
    })
    assert sorted(f.line for f in findings) == [5, 9, 13, 15]


def test_session_with_a_timeout_adapter_counts_as_having_a_timeout(tmp_path):
    files = {
        "h/__init__.py": "",
        "h/http.py": """
            import requests
            from requests.adapters import HTTPAdapter

            class TimeoutAdapter(HTTPAdapter):
                def __init__(self, *args, timeout=5, **kwargs):
                    self.timeout = timeout
                    super().__init__(*args, **kwargs)

                def send(self, request, **kwargs):
                    kwargs.setdefault("timeout", self.timeout)
                    return super().send(request, **kwargs)

            session = requests.Session()
            session.mount("https://", TimeoutAdapter())

            def fetch(url):
                session.get(url)
                requests.get(url)
        """,
    }
    findings = run(tmp_path, files)
    assert [(f.line, f.rule) for f in findings] == [(18, "BA403")]  # the module function only


def test_callbacks_scheduled_on_the_loop_run_on_the_loop(tmp_path):
    findings = run(tmp_path, {
        "cb.py": """
            import asyncio
            import time

            def flush():
                time.sleep(1)

            async def main():
                loop = asyncio.get_running_loop()
                loop.call_soon(flush)
                await loop.run_in_executor(None, flush)
        """,
    })
    assert [(f.line, f.rule) for f in findings] == [(9, "BA402")]


def test_function_local_imports_are_followed(tmp_path):
    findings = run(tmp_path, {
        "app/__init__.py": "",
        "app/slow.py": """
            import subprocess

            def git_sha():
                return subprocess.check_output(["git", "rev-parse", "HEAD"])
        """,
        "app/main.py": """
            async def version():
                from .slow import git_sha
                import time as t
                t.sleep(1)
                return git_sha()
        """,
    })
    assert sorted((f.line, f.rule) for f in findings) == [(4, "BA401"), (5, "BA402")]


def test_annotated_locals_and_parenthesised_path_receivers(tmp_path):
    findings = run(tmp_path, {
        "svc/__init__.py": "",
        "svc/store.py": """
            import sqlite3
            from pathlib import Path

            class Store:
                def __init__(self, path):
                    self.path = path
                    self.base = Path("/srv")

                def get(self, key):
                    return sqlite3.connect(self.path).execute("select 1").fetchone()

                def dump(self, name, text):
                    (self.base / name).write_text(text)
        """,
        "svc/web.py": """
            from aiohttp import web
            from .store import Store

            class ItemView(web.View):
                async def get(self):
                    store: Store = self.request.app["store"]
                    return web.json_response({"v": store.get("k")})

            async def save(request):
                Store("x.db").dump("a.txt", "hi")
                cfg = request.app["config"]
                cfg.get("k")
        """,
    })
    got = sorted((f.path, f.line, f.rule) for f in findings)
    assert got == [("svc/web.py", 7, "BA402"), ("svc/web.py", 10, "BA402")]


@pytest.mark.parametrize("ref, kind", [
    ("time.sleep", "sleep"),
    ("builtins.open", "file system"), ("io.open", "file system"), ("builtins.open().read", "file system"),
    ("os.remove", "file system"), ("os.path.exists", "file system"), ("shutil.rmtree", "file system"),
    ("pathlib.Path().read_text", "file system"),
    ("subprocess.run", "subprocess"), ("subprocess.Popen().communicate", "subprocess"),
    ("os.system", "subprocess"), ("os.popen", "subprocess"), ("os.spawnlp", "subprocess"), ("os.waitpid", "subprocess"),
    ("socket.create_connection", "network"), ("socket.socket().recv", "network"),
    ("urllib.request.urlopen", "network"), ("http.client.HTTPSConnection().getresponse", "network"),
    ("smtplib.SMTP().sendmail", "network"), ("ftplib.FTP().retrbinary", "network"),
    ("builtins.input", "console"),
    ("requests.get", "network"), ("requests.Session().post", "network"),
    ("httpx.get", "network"), ("httpx.Client().send", "network"), ("urllib3.PoolManager().request", "network"),
    ("psycopg2.connect", "database"), ("psycopg2.connect().cursor().execute", "database"),
    ("psycopg.connect().execute", "database"), ("pymysql.connect().cursor().execute", "database"),
    ("MySQLdb.connect", "database"), ("sqlite3.connect().execute", "database"),
    ("pymongo.MongoClient().db.users.find_one", "database"), ("redis.Redis().get", "database"),
    ("boto3.client().put_object", "network"), ("boto3.resource().Object().get", "network"),
    ("elasticsearch.Elasticsearch().search", "network"), ("paramiko.SSHClient().exec_command", "network"),
    ("django.core.cache.cache.get", "database"),
    ("sqlalchemy.orm.Session().execute", "database"), ("sqlalchemy.create_engine().connect", "database"),
    ("sqlalchemy.create_engine().connect().execute", "database"),
    ("builtins.open().readlines", "file system"), ("io.open().write", "file system"),
    ("pathlib.Path().open().write", "file system"), ("pathlib.Path().with_name().unlink", "file system"),
    ("pathlib.Path.home().read_text", "file system"), ("pathlib.Path().iterdir()[].unlink", "file system"),
])
def test_catalog_covers_the_blocking_apis_the_issue_lists(ref, kind):
    entry = catalog_model.load(load_catalog()).blocking(ref)
    assert entry is not None and entry.kind == kind and entry.alternative


@pytest.mark.parametrize("ref", [
    "redis.Redis().pipeline", "boto3.client().generate_presigned_url", "httpx.AsyncClient().get",
    "redis.asyncio.Redis().get", "os.path.join", "requests.Session", "$unknown.get", "aiofiles.open",
    "aiofiles.open().read", "io.StringIO().write", "pathlib.Path().name.replace", "pathlib.Path.home",
    "pathlib.Path().read_text().replace", "pathlib.Path().open().readlines()[].strip", "anyio.Path().exists",
])
def test_catalog_leaves_non_blocking_apis_alone(ref):
    assert catalog_model.load(load_catalog()).blocking(ref) is None


def test_project_decorator_that_offloads_makes_the_function_async(tmp_path):
    findings = run(tmp_path, {
        "d.py": """
            import asyncio
            import functools
            import time

            def in_thread(fn):
                @functools.wraps(fn)
                async def wrapper(*args, **kwargs):
                    return await asyncio.to_thread(fn, *args, **kwargs)
                return wrapper

            def logged(fn):
                @functools.wraps(fn)
                def wrapper(*args, **kwargs):
                    return fn(*args, **kwargs)
                return wrapper

            @in_thread
            def slow():
                time.sleep(1)

            @logged
            def slow_logged():
                time.sleep(1)

            async def main():
                task = asyncio.ensure_future(slow())
                slow_logged()
                await task
        """,
    })
    assert [(f.line, f.rule) for f in findings] == [(line_of(tmp_path, "d.py", "    slow_logged()"), "BA402")]


def test_instance_attribute_defaulting_to_a_client_is_typed_by_its_constructor(tmp_path):
    findings = run(tmp_path, {
        "w/__init__.py": "",
        "w/client.py": """
            import requests

            class Weather:
                def __init__(self, session=None):
                    self.session = session or requests.Session()
                    self.cache = {}

                def today(self, city):
                    self.cache.get(city)
                    return self.session.get("https://weather.example/" + city, timeout=3).json()
        """,
        "w/api.py": """
            from .client import Weather

            weather = Weather()

            async def today(request):
                return weather.today("paris")
        """,
    })
    (f,) = findings
    assert (f.path, f.line, f.rule) == ("w/api.py", 6, "BA402")
    assert f.context["chain"] == ["w.client.Weather.today", "requests.Session().get"]


def test_sync_context_manager_entered_in_a_coroutine(tmp_path):
    findings = run(tmp_path, {
        "lock.py": """
            import fcntl
            import os

            class FileLock:
                def __init__(self, path):
                    self.path = path

                def __enter__(self):
                    self.fd = os.open(self.path, os.O_CREAT)
                    return self

                def __exit__(self, *exc):
                    return False

            class Quiet:
                def __enter__(self):
                    return self

                def __exit__(self, *exc):
                    return False

            async def job():
                with FileLock("/tmp/job.lock"):
                    pass
                with Quiet():
                    pass
                async with FileLock("/tmp/x"):
                    pass
        """,
    })
    assert [(f.line, f.rule) for f in findings] == [(line_of(tmp_path, "lock.py", 'with FileLock("/tmp/job.lock")'), "BA402")]


# ----- marked projects: `# HIT` lines must be reported (with the rule when given), nothing else --
def _marked(root: Path, files: dict[str, str]) -> tuple[set[tuple[str, int]], set[tuple[str, int]], list]:
    findings = [f for f in run(root, files) if f.rule != "BA403"]
    want = set()
    for rel in files:
        for n, text in enumerate((root / rel).read_text().splitlines(), 1):
            if "# HIT" in text:
                want.add((rel, n))
    return want, {(f.path, f.line) for f in findings}, findings


def test_file_object_methods_and_iteration_are_blocking_calls_of_their_own_lines(tmp_path):
    want, got, findings = _marked(tmp_path, {
        "files/__init__.py": "",
        "files/api.py": """
            import asyncio
            import io
            from pathlib import Path

            import aiofiles
            import anyio

            async def read_config(path, tmp: Path):
                with open(path) as fh:  # HIT
                    data = fh.read()  # HIT
                    fh.seek(0)  # HIT
                    rest = fh.readlines()  # HIT
                    for line in fh:  # HIT
                        print(line)
                    upper = [line.upper() for line in fh]  # HIT
                with io.open(path, "a") as out:  # HIT
                    out.write("x")  # HIT
                    out.writelines(["a", "b"])  # HIT
                head = open(path).read()  # HIT
                log = open(path, "a")  # HIT
                log.write("done")  # HIT
                log.close()  # HIT
                with tmp.open() as f:  # HIT
                    text = f.read()  # HIT
                with Path(path).open("rb") as raw:  # HIT
                    for chunk in raw:  # HIT
                        print(chunk)
                return data, rest, upper, head, text

            def _read(path):
                with open(path) as fh:
                    return fh.read()

            async def near_misses(path):
                async with aiofiles.open(path) as f:
                    text = await f.read()
                    async for line in f:
                        print(line)
                async with await anyio.open_file(path) as g:
                    more = await g.read()
                buf = io.StringIO()
                buf.write(text)
                copy = await asyncio.to_thread(_read, path)

                def offloaded():
                    with open(path) as fh:
                        return [line for line in fh]

                lines = await asyncio.to_thread(offloaded)
                await asyncio.get_running_loop().run_in_executor(None, lambda: open(path).read())
                return text, more, buf.getvalue(), copy, lines

            def sync_helper(path):
                with open(path) as fh:
                    for line in fh:
                        print(line)
        """,
    })
    assert got == want
    by_line = {f.line: f for f in findings}
    loop_line = line_of(tmp_path, "files/api.py", "for line in fh:  # HIT")
    assert by_line[loop_line].rule == "BA401" and by_line[loop_line].context["kind"] == "file system"
    assert by_line[line_of(tmp_path, "files/api.py", "fh.read()  # HIT")].context["call"] == "open().read"


def test_summary_keeps_the_left_operand_ref_of_a_division():
    import ast

    from backend_audit.parsing.summary import summarize_module

    text = textwrap.dedent("""
        from pathlib import Path

        async def f(tmp, name):
            src = Path(tmp) / name / "x"
            n = 3 / 2
            src.exists()
    """)
    fn = summarize_module(ast.parse(text), text).functions["f"]
    assert fn.bindings["src"] == "pathlib.Path()"
    assert "n" not in fn.bindings  # a constant on the left: still unknown
    assert [c.ref for c in fn.calls][-1] == "pathlib.Path().exists"


def test_paths_keep_their_type_through_operators_and_methods(tmp_path):
    want, got, findings = _marked(tmp_path, {
        "media/__init__.py": "",
        "media/settings.py": """
            from pathlib import Path

            BASE_DIR = Path(__file__).resolve().parent
            MEDIA = BASE_DIR / "media"
            LABEL = "a" + "/" + "b"
        """,
        "media/api.py": """
            import asyncio
            from pathlib import Path

            import anyio

            from .settings import MEDIA

            async def handle(tmp, name, base: Path):
                src = Path(tmp) / name
                dst = src.with_name(name + ".done")
                sub = Path(tmp).joinpath("a", name)
                home = Path.home() / ".cfg"
                part = base / "x.part"
                src.exists()  # HIT
                dst.unlink()  # HIT
                sub.stat()  # HIT
                src.parent.mkdir(exist_ok=True)  # HIT
                home.read_text()  # HIT
                part.unlink()  # HIT
                base.is_dir()  # HIT
                MEDIA.mkdir(exist_ok=True)  # HIT
                (MEDIA / name).touch()  # HIT
                for old in MEDIA.iterdir():  # HIT
                    old.unlink()  # HIT
                await asyncio.to_thread(src.unlink)
                await asyncio.to_thread(dst.write_text, "done")
                await anyio.Path(tmp).joinpath(name).exists()
                clean = src.name.replace("-", "_")
                stem = dst.stem.replace(".", "")
                rel = src.relative_to(tmp).as_posix()
                n = len(name) / 2
                return clean, stem, rel, n
        """,
    })
    assert got == want
    assert {(f.rule, f.context["kind"]) for f in findings} == {("BA401", "file system")}
    unlink = [f for f in findings if f.line == line_of(tmp_path, "media/api.py", "dst.unlink()")]
    assert unlink[0].context["call"] == "pathlib.Path().with_name().unlink"


def test_partial_objects_are_offloaded_when_passed_and_run_when_called(tmp_path):
    want, got, findings = _marked(tmp_path, {
        "jobs/__init__.py": "",
        "jobs/tasks.py": """
            import functools
            import shutil
            import time

            def export(path, rows):
                with open(path, "w") as fh:
                    fh.write(str(rows))

            def pure(rows):
                return len(rows)

            NIGHTLY = functools.partial(export, "/srv/nightly.csv")
            COUNT = functools.partial(pure)
            NAP = functools.partial(time.sleep, 1)
        """,
        "jobs/api.py": """
            import asyncio
            from functools import partial

            from . import tasks
            from .tasks import COUNT, NAP, NIGHTLY

            async def offloaded(rows):
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, partial(tasks.export, "/srv/a.csv", rows))
                await asyncio.to_thread(partial(tasks.export, "/srv/b.csv", rows))
                await loop.run_in_executor(None, NIGHTLY, rows)
                await asyncio.to_thread(NIGHTLY, rows)
                job = partial(tasks.export, "/srv/c.csv")
                await asyncio.to_thread(job, rows)
                await asyncio.to_thread(NAP)
                COUNT(rows)
                counted = partial(tasks.pure, rows)
                counted()

            async def on_the_loop(rows):
                NIGHTLY(rows)  # HIT
                job = partial(tasks.export, "/srv/d.csv")
                job(rows)  # HIT
                partial(tasks.export, "/srv/e.csv")(rows)  # HIT
                NAP()  # HIT
        """,
    })
    assert got == want
    rules = {f.line: f.rule for f in findings}
    assert rules[line_of(tmp_path, "jobs/api.py", "NIGHTLY(rows)  # HIT")] == "BA402"
    assert rules[line_of(tmp_path, "jobs/api.py", "NAP()  # HIT")] == "BA401"


def test_startup_code_runs_on_the_loop(tmp_path):
    want, got, findings = _marked(tmp_path, {
        "svc/__init__.py": "",
        "svc/db.py": """
            import sqlite3
            from dataclasses import dataclass

            import psycopg2

            class Database:
                def __init__(self, dsn):
                    self.conn = psycopg2.connect(dsn)

            class Reporting(Database):
                def __init__(self, dsn):
                    super().__init__(dsn)

            class Lazy:
                def __init__(self, dsn):
                    self.dsn = dsn

                def connect(self):
                    return psycopg2.connect(self.dsn)

            @dataclass
            class Audit:
                path: str

                def __post_init__(self):
                    self.conn = sqlite3.connect(self.path)

            @dataclass
            class Policy:
                limit: int = 3

                def __post_init__(self):
                    self.double = self.limit * 2
        """,
        "svc/web.py": """
            import json
            import time
            from contextlib import asynccontextmanager

            from aiohttp import web
            from fastapi import FastAPI
            from starlette.applications import Starlette

            from .db import Audit, Database, Lazy, Policy, Reporting

            def read_settings(path):
                with open(path) as fh:
                    return json.load(fh)

            async def create_app():
                settings = read_settings("/etc/app.json")  # HIT
                app = web.Application()
                app["db"] = Database(settings["dsn"])  # HIT
                app["lazy"] = Lazy(settings["dsn"])
                app["policy"] = Policy()
                app.on_startup.append(on_startup)
                return app

            async def on_startup(app):
                time.sleep(0.5)  # HIT
                app["reporting"] = Reporting("dsn")  # HIT
                app["audit"] = Audit("/var/audit.db")  # HIT

            @asynccontextmanager
            async def lifespan(app):
                app.state.db = Database("dsn")  # HIT
                yield

            def warm_cache():
                time.sleep(1)  # HIT

            def close_files():
                with open("/tmp/state", "w") as fh:  # HIT
                    fh.write("closed")  # HIT

            def never_registered():
                time.sleep(1)

            api = FastAPI(lifespan=lifespan, on_startup=[warm_cache])
            star = Starlette(on_shutdown=[close_files])

            @api.on_event("startup")
            def preload():
                Database("dsn")  # HIT

            @api.get("/sync")
            def sync_endpoint():
                time.sleep(1)
                return {}
        """,
    })
    assert got == want
    hook = [f for f in findings if f.symbol == "warm_cache"]
    assert hook and hook[0].severity == "medium" and "startup/shutdown hook" in hook[0].message


def test_file_objects_passed_to_readers_and_paths_kept_on_instances(tmp_path):
    want, got, findings = _marked(tmp_path, {
        "st/__init__.py": "",
        "st/store.py": """
            import io
            import json
            import pickle
            from pathlib import Path

            class Store:
                ROOT = Path("/srv") / "store"

                def __init__(self, root: Path, name: str, cache: dict):
                    self.root = root
                    self.data = Path(root) / "data"
                    self.name = name
                    self.cache = cache

                async def load(self):
                    self.root.exists()  # HIT
                    self.data.mkdir()  # HIT
                    self.ROOT.is_dir()  # HIT
                    with open(self.data / "x.json") as fh:  # HIT
                        cfg = json.load(fh)  # HIT
                    with (self.root / "x.pkl").open("wb") as out:  # HIT
                        pickle.dump(cfg, out)  # HIT
                    buf = io.StringIO()
                    json.dump(cfg, buf)
                    parsed = json.loads('{"a": 1}')
                    self.name.replace("a", "b")
                    self.cache.get("x")
                    return cfg, parsed
        """,
    })
    assert got == want
    (f,) = [f for f in findings if f.line == line_of(tmp_path, "st/store.py", "json.load(fh)")]
    assert f.context["call"] == "json.load(open())" and f.context["kind"] == "file system"


def test_classmethod_factories_stdin_and_fdopen(tmp_path):
    want, got, _ = _marked(tmp_path, {
        "m.py": """
            import os
            import sys

            import psycopg2

            class Db:
                def __init__(self, dsn):
                    self.conn = psycopg2.connect(dsn)

                @classmethod
                def from_env(cls):
                    return cls(os.environ["DSN"])

                @classmethod
                def describe(cls):
                    return cls.__name__

                @staticmethod
                def make(cls):
                    return cls("x")

            async def main(stdin, factory):
                Db.from_env()  # HIT
                Db.describe()
                Db.make(factory)
                for line in sys.stdin:  # HIT
                    print(line)
                for line in stdin:
                    print(line)
                with os.fdopen(3) as fh:
                    fh.read()  # HIT
        """,
    })
    assert got == want
