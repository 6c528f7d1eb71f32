"""The per-file summary: refs, call sites, nested functions, awaited and loop facts."""

from __future__ import annotations

import ast
import textwrap

from backend_audit.parsing.summary import const_value, find_suppressions, summarize_module


def summarize(text: str):
    text = textwrap.dedent(text)
    return summarize_module(ast.parse(text), text)


def test_refs_substitute_imports_locals_and_params():
    s = summarize("""
        import requests
        from .db import query as q

        async def view(request, limit: int = 10):
            s = requests.Session()
            s.get("/x")
            q(request.GET["id"])
            await other()
    """)
    fn = s.functions["view"]
    refs = [c.ref for c in fn.calls]
    assert refs == ["requests.Session", "requests.Session().get", ".db.query", "$other"]
    assert fn.is_async
    assert [c.awaited for c in fn.calls][-1] is True
    assert fn.calls[2].args == [("ref", "$request.GET[]")]
    assert fn.params[1].default == ("const", 10)


def test_nested_defs_and_lambdas_own_their_calls():
    s = summarize("""
        import asyncio, time

        async def handler():
            def work():
                time.sleep(1)
            await asyncio.to_thread(work)
            await asyncio.to_thread(lambda: time.sleep(2))
    """)
    assert [c.ref for c in s.functions["handler.<locals>.work"].calls] == ["time.sleep"]
    outer = s.functions["handler"]
    assert outer.calls[0].args == [("ref", "@handler.<locals>.work")]
    lam = [q for q in s.functions if "<lambda" in q]
    assert len(lam) == 1 and s.functions[lam[0]].parent == "handler"
    assert all(c.ref != "time.sleep" for c in outer.calls)


def test_loop_depth_counts_loops_and_comprehensions():
    s = summarize("""
        def f(rows):
            load()
            for r in rows:
                touch(r)
            [g(x) for x in rows]
    """)
    depth = {c.ref: c.loop_depth for c in s.functions["f"].calls}
    assert depth == {"$load": 0, "$touch": 1, "$g": 1}


def test_class_attrs_and_instance_attrs():
    s = summarize("""
        from django.db import models
        import httpx

        class Book(models.Model):
            title = models.CharField(max_length=10, db_index=True)

            class Meta:
                ordering = ["-title"]

            def __init__(self):
                self.client = httpx.Client()
    """)
    book = s.classes["Book"]
    field = book.attrs["title"].value
    assert field[0] == "call" and field[1] == "django.db.models.CharField"
    assert const_value(field[3]["db_index"]) is True
    assert const_value(s.classes["Book.Meta"].attrs["ordering"].value) == ["-title"]
    assert book.instance_attrs["client"].value[1] == "httpx.Client"


def test_columns_are_characters_not_bytes():
    s = summarize("x = 'é'; f()\n")
    call = s.functions["<module>"].calls[0]
    assert call.col == 9  # `ast` says 10: the é is one character but two bytes


def test_suppression_comments():
    text = "a()  # backend-audit: ignore[BA101, ba402]\nb()  # backend-audit: ignore\nc()\n"
    assert find_suppressions(text) == {1: ["BA101", "BA402"], 2: []}


def test_types_from_relative_annotations_annotated_assignments_and_local_imports():
    s = summarize("""
        from .services import Svc

        def handler(svc: Svc):
            svc.run()

        def other():
            import requests
            from .clients import Api
            client: Api = make()
            client.call()
            requests.get("/x")
    """)
    assert [c.ref for c in s.functions["handler"].calls] == [".services.Svc().run"]
    assert [c.ref for c in s.functions["other"].calls] == ["$make", ".clients.Api().call", "requests.get"]


def test_declared_type_wins_over_a_value_that_is_not_a_constructor_call():
    s = summarize("""
        from aiohttp import web
        from .repo import Repo, Base, Derived

        async def handler(request: web.Request):
            repo: Repo = request.app["repo"]
            repo.search()
            other: Base = Derived()
            other.run()
    """)
    assert [c.ref for c in s.functions["handler"].calls] == [".repo.Repo().search", ".repo.Derived", ".repo.Derived().run"]


def test_summary_survives_the_pickle_round_trip_the_cache_and_workers_use():
    import pickle

    from backend_audit.engine import summarize_file
    from backend_audit.catalog import load_catalog
    from backend_audit.analyzers import load_analyzers

    text = textwrap.dedent("""
        import requests
        from django.db import models

        class Book(models.Model):
            title = models.CharField(max_length=10, db_index=True)

            @property
            def label(self, *args, sep: str = "-", **kw):
                return f"{self.title}{sep}"

        async def view(request, limit: int = 10):
            for b in Book.objects.filter(title=request.GET["q"])[:limit]:
                requests.get(b.title, timeout=3)
            return [x async for x in aiter_things()]
    """)
    analyzers, _ = load_analyzers()
    summary = summarize_file("python", text.encode(), load_catalog(), analyzers)
    assert summary.module.functions["view"].calls and summary.facts
    again = pickle.loads(pickle.dumps(summary))
    assert again == summary
    assert type(again.module.functions["view"].calls[0]) is type(summary.module.functions["view"].calls[0])
