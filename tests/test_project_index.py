"""The project index: module names, import resolution, classes, call graph."""

from __future__ import annotations

import ast
import textwrap

from backend_audit.index.project import ProjectIndex, split_ref
from backend_audit.parsing.summary import summarize_module


def build(files: dict[str, str]) -> ProjectIndex:
    summaries = {}
    for path, text in files.items():
        text = textwrap.dedent(text)
        summaries[path] = summarize_module(ast.parse(text), text)
    return ProjectIndex(summaries)


def callees(index: ProjectIndex, function: str) -> list[str | None]:
    return [c.target for c in index.calls(function)]


PROJECT = {
    "shop/__init__.py": "from .services.pricing import total as compute_total\n",
    "shop/services/__init__.py": "",
    "shop/services/pricing.py": """
        import requests as rq
        from ..util import retry

        TAX = 0.2
        session = rq.Session()

        def total(items):
            return retry(lambda: sum(items))

        def fetch_rates():
            return session.get("https://rates")
    """,
    "shop/util.py": """
        def retry(fn):
            return fn()
    """,
    "shop/views.py": """
        import httpx
        from shop import compute_total
        from shop.services import pricing as p
        from .clients import Api

        class Base:
            def helper(self):
                return 1

        class View(Base):
            def __init__(self):
                self.client = httpx.Client()
                self.api = Api()

            async def get(self, request):
                compute_total([])
                p.fetch_rates()
                self.helper()
                self.client.get("/x")
                self.api.call()
                inner = make_client()
                inner.post("/y")

        def make_client():
            return httpx.Client(timeout=3)
    """,
    "shop/clients.py": """
        class Api:
            def call(self):
                pass
    """,
}


def test_module_names_follow_packages():
    index = build(PROJECT)
    assert index.module_of["shop/services/pricing.py"] == "shop.services.pricing"
    assert index.module_of["shop/__init__.py"] == "shop"
    assert "shop.services" in index.packages


def test_calls_resolve_through_reexports_aliases_self_and_return_types():
    index = build(PROJECT)
    targets = callees(index, "shop.views.View.get")
    assert "shop.services.pricing.total" in targets  # re-exported through shop/__init__ under another name
    assert "shop.services.pricing.fetch_rates" in targets  # module alias `p`
    assert "shop.views.Base.helper" in targets  # inherited method on self
    assert "httpx.Client().get" in targets  # type of self.client from __init__
    assert "shop.clients.Api.call" in targets  # project class instance attribute
    assert "httpx.Client().post" in targets  # a project function's return value


def test_module_level_alias_and_relative_import():
    index = build(PROJECT)
    assert callees(index, "shop.services.pricing.fetch_rates") == ["requests.Session().get"]
    assert "shop.util.retry" in callees(index, "shop.services.pricing.total")


def test_lambda_is_its_own_function_and_callers_are_indexed():
    index = build(PROJECT)
    lambdas = [q for q in index.functions if q.startswith("shop.services.pricing.total.<lambda")]
    assert len(lambdas) == 1
    assert callees(index, lambdas[0]) == ["builtins.sum"]
    callers = [c for c, _ in index.callers("shop.services.pricing.total")]
    assert callers == ["shop.views.View.get"]


def test_class_hierarchy():
    index = build(PROJECT)
    assert index.mro("shop.views.View") == ["shop.views.View", "shop.views.Base"]
    assert index.is_subclass("shop.views.View", "shop.views.Base")
    assert index.subclasses("shop.views.Base") == ["shop.views.View"]


def test_external_base_classes_are_canonical():
    index = build({"app/__init__.py": "", "app/models.py": """
        from django.db import models
        class Book(models.Model):
            pass
        class Ebook(Book):
            pass
    """})
    assert index.is_subclass("app.models.Ebook", "django.db.models.Model")
    assert index.resolve("app.models", "@Book.objects.filter()") == "app.models.Book.objects.filter()"


def test_import_cycles_terminate():
    index = build({
        "a.py": "from b import x\n",
        "b.py": "from a import x\n",
        "c.py": "from a import x\nx()\n",
    })
    assert callees(index, "c") in (["a.x"], ["b.x"])  # unresolvable, but resolution ends


def test_star_import_cycles_terminate():
    index = build({
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import *\n",
        "pkg/b.py": "from pkg.c import *\n",
        "pkg/c.py": "from pkg.a import *\n",
        "pkg/use.py": "from pkg.a import missing\nmissing()\n",
    })
    assert callees(index, "pkg.use") == ["pkg.a.missing"]  # a name none of them defines


def test_split_ref_keeps_markers_and_locals():
    assert split_ref("a.b().c[]") == ["a", "b()", "c[]"]
    assert split_ref("m.f.<locals>.g") == ["m", "f", "<locals>", "g"]
    assert split_ref("m.f.<lambda:1:2>") == ["m", "f", "<lambda:1:2>"]
