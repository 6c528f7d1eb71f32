"""The unvalidated-input analyzer (BA3xx): taint from request data to sinks, across modules."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from backend_audit.analyzers.unvalidated_input import UnvalidatedInputAnalyzer
from backend_audit.catalog import CatalogError, load_catalog
from backend_audit.engine import ScanOptions, scan

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def run(tmp_path: Path, files: dict[str, str]):
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text), "utf-8")
    result = scan(ScanOptions(paths=[str(tmp_path)], use_cache=False, jobs=1), load_catalog(),
                  analyzers=[UnvalidatedInputAnalyzer()])
    return result.findings


def lines_of(findings, rule=None):
    return sorted((f.path, f.line) for f in findings if rule is None or f.rule == rule)


FLASK_HEAD = """
    import re
    import subprocess
    from flask import Flask, abort, request
    app = Flask(__name__)
    ALLOWED = {"a", "b"}
"""


def test_cross_module_flow_is_reported_at_the_sink_with_the_whole_path(tmp_path):
    findings = run(tmp_path, {
        "shop/__init__.py": "",
        "shop/db.py": """
            import sqlite3

            def run_query(sql):
                cur = sqlite3.connect("x.db").cursor()
                cur.execute(sql)
                return cur.fetchall()

            def by_title(title):
                return run_query("SELECT * FROM t WHERE title = '%s'" % title)
        """,
        "shop/views.py": """
            from flask import Flask, request
            from .db import by_title
            app = Flask(__name__)

            @app.route("/s")
            def search():
                q = request.args.get("q")
                return by_title(q.strip())
        """,
    })
    assert [(f.rule, f.path, f.line) for f in findings] == [("BA301", "shop/db.py", 6)]
    f = findings[0]
    assert 'request.args.get("q")' in f.message and "cur.execute" in f.message
    # flow: source first (in views.py), then each hop, the sink last
    assert f.flow[0].path == "shop/views.py" and f.flow[0].line == 8
    assert f.flow[-1].path == "shop/db.py" and f.flow[-1].line == 6
    hops = [r.message for r in f.flow]
    assert any("by_title" in m for m in hops) and any("run_query" in m for m in hops)
    assert f.context["sink_kind"] == "sql" and f.context["source"] == 'request.args.get("q")'
    assert {"source", "sink", "sink_kind", "validation"} <= set(f.context)


def test_parameterized_queries_and_constant_identifiers_are_not_injection(tmp_path):
    findings = run(tmp_path, {"app.py": FLASK_HEAD + """
    import sqlite3
    TABLE = "books"

    @app.route("/a")
    def a():
        q = request.args["q"]
        cur = sqlite3.connect("x").cursor()
        cur.execute("SELECT * FROM books WHERE t = ?", (q,))
        cur.execute(f"SELECT * FROM {TABLE} WHERE t = ?", [q])
        cur.execute("SELECT * FROM books WHERE t = '" + q + "'")
    """})
    assert lines_of(findings) == [("app.py", 17)]


def test_reassigning_a_clean_value_clears_taint(tmp_path):
    findings = run(tmp_path, {"app.py": FLASK_HEAD + """
    @app.route("/a")
    def a():
        cmd = request.args["cmd"]
        subprocess.run(cmd, shell=True)
        cmd = "ls -l"
        subprocess.run(cmd, shell=True)
        n = int(request.args["n"])
        subprocess.run(f"head -n {n} f.txt", shell=True)
    """})
    assert lines_of(findings) == [("app.py", 11)]


@pytest.mark.parametrize("guard, flagged", [
    ("if name not in ALLOWED:\n        abort(400)", False),
    ("if name not in ALLOWED:\n        return 'no'", False),
    ("if not re.fullmatch(r'[a-z]+', name):\n        abort(400)", False),
    ("if not re.match(r'^[a-z]+$', name):\n        abort(400)", False),
    ("if not name.isalnum():\n        raise ValueError(name)", False),
    # look-alikes
    ("if not re.match(r'[a-z]+', name):\n        abort(400)", True),   # not anchored
    ("if other not in ALLOWED:\n        abort(400)", True),            # a different variable
    ("if name not in ALLOWED:\n        print('bad')", True),           # does not leave
    ("try:\n        if name not in ALLOWED:\n            raise ValueError(name)\n    except ValueError:\n        pass", True),
    ("assert name in ALLOWED", True),                                 # stripped by python -O
])
def test_guards_clean_only_when_their_failure_leaves_the_function(tmp_path, guard, flagged):
    body = FLASK_HEAD + """
    @app.route("/a")
    def a():
        name = request.args["name"]
        other = request.args["other"]
        GUARD
        subprocess.run("echo " + name, shell=True)
    """
    body = textwrap.dedent(body).replace("GUARD", guard)
    findings = run(tmp_path, {"app.py": body})
    assert bool(findings) is flagged, [f.message for f in findings]


def test_flask_route_converters(tmp_path):
    findings = run(tmp_path, {"app.py": FLASK_HEAD + """
    @app.route("/a/<int:n>/<path:p>/<s>")
    def a(n, p, s):
        open("/data/" + str(n))
        open("/data/" + p)
        subprocess.run("echo " + s, shell=True)
    """})
    assert lines_of(findings) == [("app.py", 11), ("app.py", 12)]
    assert {f.rule for f in findings} == {"BA304", "BA302"}


def test_django_url_converters_are_read_from_urls_py(tmp_path):
    findings = run(tmp_path, {
        "blog/__init__.py": "",
        "blog/views.py": """
            from django.db import connection

            def by_pk(request, pk):
                connection.cursor().execute(f"SELECT * FROM p WHERE id = {pk}")

            def by_slug(request, slug):
                connection.cursor().execute(f"SELECT * FROM p WHERE slug = '{slug}'")
        """,
        "blog/urls.py": """
            from django.urls import path
            from . import views
            urlpatterns = [path("p/<int:pk>/", views.by_pk), path("s/<str:slug>/", views.by_slug)]
        """,
    })
    assert lines_of(findings) == [("blog/views.py", 8)]
    assert "slug" in findings[0].message


def test_fastapi_parameter_types(tmp_path):
    findings = run(tmp_path, {"main.py": """
        import subprocess, uuid
        from fastapi import FastAPI, Query
        from pydantic import BaseModel
        app = FastAPI()

        class Item(BaseModel):
            name: str
            count: int

        @app.get("/a")
        def a(s: str, n: int, u: uuid.UUID, q: str = Query(..., pattern="^[a-z]+$")):
            subprocess.run(f"echo {s}", shell=True)
            subprocess.run(f"echo {n}", shell=True)
            subprocess.run(f"echo {u}", shell=True)
            subprocess.run(f"echo {q}", shell=True)

        @app.post("/b")
        def b(item: Item):
            subprocess.run(f"echo {item.name}", shell=True)
            subprocess.run(f"echo {item.count}", shell=True)
    """})
    assert lines_of(findings) == [("main.py", 13), ("main.py", 20)]


def test_sanitizers_and_safe_variants(tmp_path):
    findings = run(tmp_path, {"app.py": FLASK_HEAD + """
    import os, shlex, yaml, pickle
    from werkzeug.utils import secure_filename
    from flask import redirect

    @app.route("/a")
    def a():
        v = request.args["v"]
        open(os.path.join("/data", secure_filename(v)))
        open(os.path.join("/data", os.path.basename(v)))
        open(os.path.join("/data", v))
        subprocess.run("echo " + shlex.quote(v), shell=True)
        subprocess.run(["echo", v])
        yaml.safe_load(v)
        yaml.load(v, Loader=yaml.SafeLoader)
        yaml.load(v, Loader=yaml.Loader)
        pickle.loads(v)
        redirect("/items/" + v)
        redirect(v)
    """})
    assert [(f.line, f.rule) for f in findings] == [(17, "BA304"), (22, "BA307"), (23, "BA307"), (25, "BA305")]


def test_mass_assignment_and_unbounded_limits(tmp_path):
    findings = run(tmp_path, {
        "app/__init__.py": "",
        "app/models.py": """
            from django.db import models
            class Post(models.Model):
                title = models.CharField(max_length=10)
        """,
        "app/views.py": """
            from .models import Post

            def create(request):
                Post(**request.POST.dict())
                Post(title=request.POST["title"])
                Post.objects.create(**request.POST.dict())

            def edit(request, post):
                for k, v in request.POST.items():
                    setattr(post, k, v)
                for k, v in request.POST.items():
                    if k not in ("title",):
                        continue
                    setattr(post, k, v)

            def latest(request):
                n = int(request.GET["n"])
                a = Post.objects.all()[:n]
                b = Post.objects.all()[:min(n, 100)]
        """,
    })
    got = [(f.line, f.rule) for f in findings]
    assert got == [(5, "BA309"), (7, "BA309"), (11, "BA309"), (19, "BA310")]


def test_drf_validated_data_is_clean_and_initial_data_is_not(tmp_path):
    findings = run(tmp_path, {"views.py": """
        from django.db import connection
        from rest_framework.views import APIView

        class V(APIView):
            def post(self, request):
                s = Ser(data=request.data)
                s.is_valid(raise_exception=True)
                connection.cursor().execute(f"UPDATE t SET a = '{s.validated_data['a']}'")
                connection.cursor().execute(f"UPDATE t SET a = '{s.initial_data['a']}'")
                connection.cursor().execute("UPDATE t SET a = %s", [request.data["a"]])
    """})
    assert lines_of(findings) == [("views.py", 10)]


def test_aiohttp_and_starlette_request_sources(tmp_path):
    findings = run(tmp_path, {"svc.py": """
        import os
        from aiohttp import web

        async def h(request):
            name = request.match_info["name"]
            data = await request.post()
            os.system("echo " + name)
            os.system("echo " + data["x"])
            os.system("echo " + request.method)
    """})
    assert lines_of(findings) == [("svc.py", 8), ("svc.py", 9)]


def test_recursion_and_odd_code_do_not_crash(tmp_path):
    findings = run(tmp_path, {"app.py": FLASK_HEAD + """
    def rec(x, n):
        if n:
            return rec(x, n - 1)
        return x

    def a(x): return b(x)
    def b(x): return a(x)

    @app.route("/r")
    def r():
        v = rec(request.args["v"], 3)
        w = a(request.args["w"])
        match v:
            case {"k": kk}:
                pass
            case [first, *rest]:
                pass
        if (y := request.args.get("y")):
            pass
        f = lambda z: z
        g = [i for i in v if i]
        del g
        global GLOBAL
        subprocess.run(f(v) + w, shell=True)
        os = __import__(request.args["m"])
        return eval(y)
    """, "broken.py": "def f(:\n    pass\n"})
    rules = sorted({f.rule for f in findings})
    assert "BA303" in rules


def test_fixture_projects_cover_every_framework():
    names = {p.name for p in FIXTURES.iterdir() if p.name.startswith("ui_")}
    assert {"ui_flask_shop", "ui_django_blog", "ui_drf_api", "ui_fastapi_app", "ui_aiohttp_svc"} <= names


def test_malformed_sink_catalog_is_a_clear_error(tmp_path):
    from backend_audit.analyzers.unvalidated_input.models import load_models
    from backend_audit.catalog import _load_files, builtin_rules_dir

    bad = tmp_path / "bad.toml"
    bad.write_text('[[catalog.taint.sink]]\nkind = "nope"\ncall = "x.y"\n', "utf-8")
    files = tuple(sorted(builtin_rules_dir().rglob("*.toml"))) + (bad,)
    catalog = _load_files(files)
    with pytest.raises(CatalogError, match="nope"):
        load_models(catalog)


def test_every_sink_kind_has_a_documented_rule():
    from backend_audit.analyzers.unvalidated_input.models import load_models

    catalog = load_catalog()
    models = load_models(catalog)
    for kind in models.kinds.values():
        doc = catalog.rule(kind.rule)
        assert doc.category == "unvalidated-input" and doc.remediation
        assert "{source}" in doc.remediation and "{sink}" in doc.remediation


def test_request_data_kept_on_self_reaches_a_sink_in_another_method(tmp_path):
    findings = run(tmp_path, {"views.py": """
        from django.db import connection
        from django.views import View

        class Search(View):
            def setup(self, request, *args, **kwargs):
                self.term = request.GET.get("q", "")
                self.size = 10

            def rows(self):
                connection.cursor().execute(f"SELECT * FROM t WHERE a = '{self.term}'")
                connection.cursor().execute(f"SELECT * FROM t LIMIT {self.size}")
    """})
    assert lines_of(findings) == [("views.py", 11)]
    assert any("stored in self.term" in r.message for r in findings[0].flow)


def test_allow_list_helpers_and_conditional_expressions(tmp_path):
    findings = run(tmp_path, {
        "app/__init__.py": "",
        "app/checks.py": """
            import re
            SORTS = {"name", "date"}
            SLUG = re.compile(r"^[a-z-]+$")

            def safe_sort(v):
                return v if v in SORTS else "name"

            def require_slug(v):
                if not SLUG.fullmatch(v):
                    raise ValueError(v)
                return v

            def warn_slug(v):
                if not SLUG.fullmatch(v):
                    print("bad", v)
                return v
        """,
        "app/views.py": """
            import os
            from flask import Flask, request
            from .checks import require_slug, safe_sort, warn_slug
            app = Flask(__name__)

            @app.route("/x")
            def x():
                v = request.args["v"]
                os.system("ls " + safe_sort(v))
                os.system("ls " + require_slug(v))
                os.system("ls " + warn_slug(v))
        """,
    })
    assert lines_of(findings) == [("app/views.py", 12)]


def test_fastapi_dependencies_carry_request_data(tmp_path):
    findings = run(tmp_path, {"main.py": """
        import os
        from fastapi import Depends, FastAPI, Query
        app = FastAPI()

        def term(q: str = ""):
            return q

        def bounded(n: int = Query(10, le=50)):
            return n

        @app.get("/a")
        def a(t: str = Depends(term), n: int = Depends(bounded)):
            os.system("grep " + t)
            os.system(f"head -n {n}")
    """})
    assert lines_of(findings) == [("main.py", 14)]


def test_sql_limit_from_request_is_an_unbounded_limit_not_an_injection(tmp_path):
    findings = run(tmp_path, {"app.py": FLASK_HEAD + """
    import sqlite3

    @app.route("/a")
    def a():
        n = request.args.get("n", 20, type=int)
        cur = sqlite3.connect("x").cursor()
        cur.execute(f"SELECT * FROM t LIMIT {n}")
        cur.execute("SELECT * FROM t WHERE a = ? LIMIT ?", ("x", n))
        cur.execute(f"SELECT * FROM t LIMIT {min(n, 100)}")
        cur.execute(f"SELECT * FROM t WHERE id = {n}")
    """})
    assert [(f.line, f.rule) for f in findings] == [(14, "BA310"), (15, "BA310")]


def test_code_chosen_keys_are_not_reported_but_referer_redirects_are(tmp_path):
    findings = run(tmp_path, {
        "app/__init__.py": "",
        "app/models.py": """
            from django.db import models
            class Post(models.Model):
                title = models.CharField(max_length=10)
        """,
        "app/views.py": """
            import requests
            from django.conf import settings
            from django.http import HttpResponseRedirect
            from .models import Post

            def v(request):
                filters = {}
                if request.GET.get("t"):
                    filters["title__icontains"] = request.GET["t"]
                Post.objects.filter(**filters)
                Post.objects.filter(**{"title": request.GET["t"]})
                requests.get(f"{settings.API_URL}/posts/{request.GET['t']}")
                requests.get(request.GET["url"])
                return HttpResponseRedirect(request.META.get("HTTP_REFERER", "/"))
        """,
    })
    # the Referer is chosen by whatever page linked to the endpoint: an open redirect
    assert [(f.line, f.rule) for f in findings] == [(14, "BA306"), (15, "BA305")]


def test_deep_call_chains_are_linked_in_full(tmp_path):
    chain = "\n".join(f"def f{i}(x):\n    return f{i + 1}(x)\n" for i in range(150))
    text = ("import os\nfrom flask import request\n\n" + chain
            + "\ndef f150(x):\n    os.system(x)\n\ndef entry():\n    f0(request.args['a'])\n")
    findings = run(tmp_path, {"app.py": text})
    assert [f.rule for f in findings] == ["BA302"]
    assert findings[0].flow[0].message.startswith("source:")


def test_path_containment_check_needs_a_normalised_path(tmp_path):
    findings = run(tmp_path, {"app.py": FLASK_HEAD + """
    import os
    BASE = "/srv/files"

    @app.route("/a/<path:name>")
    def a(name):
        full = os.path.realpath(os.path.join(BASE, name))
        if not full.startswith(BASE + os.sep):
            abort(403)
        open(full)

    @app.route("/b/<path:name>")
    def b(name):
        full = os.path.join(BASE, name)
        if not full.startswith(BASE):
            abort(403)
        open(full)
    """})
    assert lines_of(findings) == [("app.py", 23)]


def test_constructor_arguments_kept_on_the_instance_reach_sinks_in_methods(tmp_path):
    findings = run(tmp_path, {
        "app/__init__.py": "",
        "app/jobs.py": """
            import subprocess

            class Job:
                def __init__(self, fmt):
                    self.fmt = fmt
                    self.tool = "exporter"

                def run(self):
                    subprocess.run(f"{self.tool} --format {self.fmt}", shell=True)

                def version(self):
                    subprocess.run(f"{self.tool} --version", shell=True)
        """,
        "app/views.py": """
            from flask import Flask, request
            from .jobs import Job
            app = Flask(__name__)

            @app.route("/x")
            def x():
                job = Job(request.args["fmt"])
                job.run()
                job.version()
                Job("csv").run()
        """,
    })
    assert lines_of(findings) == [("app/jobs.py", 10)]
    assert findings[0].flow[0].path == "app/views.py"


def test_data_after_a_fixed_url_prefix_cannot_redirect_elsewhere(tmp_path):
    findings = run(tmp_path, {"views.py": """
        from urllib.parse import urlencode
        from django.conf import settings
        from django.http import HttpResponseRedirect
        from django.urls import reverse
        from django.utils.http import url_has_allowed_host_and_scheme

        def a(request, url):
            q = request.GET.get("q", "")
            HttpResponseRedirect("%s?%s" % (url, q))
            HttpResponseRedirect(reverse("home") + "?" + urlencode({"q": q}))
            HttpResponseRedirect("{}/search/{}".format(settings.SITE_URL, q))
            HttpResponseRedirect("https:" + q)

        def b(request):
            nxt = request.POST.get("next")
            ok = url_has_allowed_host_and_scheme(url=nxt, allowed_hosts=None)
            HttpResponseRedirect(nxt if ok else "/")
            if nxt and not ok:
                nxt = "/"
            HttpResponseRedirect(nxt)
            if not nxt:
                HttpResponseRedirect(nxt)
    """})
    # line 13: "https:" fixes no host; b() is clean: `nxt` is falsy or checked wherever it is used
    assert [(f.line, f.rule) for f in findings] == [(13, "BA305")]


def test_tuple_unpacking_of_helper_results_and_nested_targets(tmp_path):
    findings = run(tmp_path, {"app.py": FLASK_HEAD + """
    def split(v):
        return "SELECT 1", v

    @app.route("/a")
    def a():
        sql, value = split(request.args["v"])
        (x, (y, z)) = split(request.args["v"])
        subprocess.run(sql, shell=True)
        subprocess.run(value, shell=True)
    """})
    assert lines_of(findings) == [("app.py", 16)]


def test_collect_runs_without_error_on_every_fixture_file():
    """`collect()` swallows its own exceptions (a scan must go on): catch them here instead."""
    import ast

    from backend_audit.analyzers.unvalidated_input.collect import collect_facts
    from backend_audit.analyzers.unvalidated_input.models import load_models
    from backend_audit.parsing.summary import LineIndex, summarize_module

    models = load_models(load_catalog())
    count = 0
    for path in sorted(FIXTURES.rglob("*.py")):
        text = path.read_text("utf-8")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        lines = LineIndex(text)
        collect_facts(tree, lines, summarize_module(tree, text, lines), models, text)
        count += 1
    assert count > 20


def test_host_allow_lists_and_validator_predicates_guard_urls(tmp_path):
    findings = run(tmp_path, {"app.py": FLASK_HEAD + """
    from urllib.parse import urlparse
    import requests
    from flask import redirect
    HOSTS = {"api.example.com"}

    def is_safe_url(target):
        return urlparse(target).netloc in ("", "example.com")

    @app.route("/a")
    def a():
        url = request.args["url"]
        if urlparse(url).hostname not in HOSTS:
            abort(400)
        requests.get(url)
        parts = urlparse(request.args["u2"])
        u2 = request.args["u2"]
        if parts.hostname not in HOSTS:
            abort(400)
        requests.get(u2)
        nxt = request.args["next"]
        if not is_safe_url(nxt):
            abort(400)
        redirect(nxt)
        redirect(request.args["other"])
    """})
    assert [(f.line, f.rule) for f in findings] == [(26, "BA306"), (31, "BA305")]


def test_flask_restful_request_parser_is_a_source(tmp_path):
    findings = run(tmp_path, {"api.py": """
        import os
        from flask_restful import Resource, reqparse

        parser = reqparse.RequestParser()
        parser.add_argument("name")

        class Item(Resource):
            def get(self):
                args = parser.parse_args()
                os.system("echo " + args["name"])

            def post(self):
                local = reqparse.RequestParser()
                data = local.parse_args()
                os.system("echo " + data["name"])
    """})
    assert lines_of(findings) == [("api.py", 11), ("api.py", 16)]


def test_a_body_model_named_request_is_not_the_request_object(tmp_path):
    findings = run(tmp_path, {"main.py": """
        import os
        from fastapi import FastAPI
        from pydantic import BaseModel
        app = FastAPI()

        class SearchRequest(BaseModel):
            term: str
            limit: int

        @app.post("/s")
        def s(request: SearchRequest):
            os.system("grep " + request.term)
            os.system(f"head -n {request.limit}")
    """})
    assert lines_of(findings) == [("main.py", 13)]


def test_validation_inside_contextlib_suppress_is_swallowed(tmp_path):
    findings = run(tmp_path, {"app.py": FLASK_HEAD + """
    import contextlib, uuid

    @app.route("/a")
    def a():
        x = request.args["x"]
        with contextlib.suppress(ValueError):
            uuid.UUID(x)
        subprocess.run("echo " + x, shell=True)
        y = request.args["y"]
        uuid.UUID(y)
        subprocess.run("echo " + y, shell=True)
    """})
    assert lines_of(findings) == [("app.py", 15)]


def test_stripping_to_word_characters_sanitizes_but_partial_stripping_does_not(tmp_path):
    findings = run(tmp_path, {"app.py": FLASK_HEAD + """
    @app.route("/a")
    def a():
        v = request.args["v"]
        subprocess.run("echo " + re.sub(r"[^a-zA-Z0-9_-]", "", v), shell=True)
        subprocess.run("echo " + re.sub(r"\\W+", "", v), shell=True)
        subprocess.run("echo " + re.sub(r"[^a-z ;]", "", v), shell=True)
        subprocess.run("echo " + re.sub(r"[;&|]", "", v), shell=True)
        subprocess.run("echo " + v.replace(";", ""), shell=True)
    """})
    assert lines_of(findings) == [("app.py", 13), ("app.py", 14), ("app.py", 15)]


def test_guards_on_request_items_clean_later_reads_of_the_same_item(tmp_path):
    findings = run(tmp_path, {"app.py": FLASK_HEAD + """
    @app.route("/a")
    def a():
        if request.args.get("sort") not in ALLOWED:
            abort(400)
        subprocess.run("sort -k " + request.args.get("sort"), shell=True)
        subprocess.run("sort -k " + request.args.get("other"), shell=True)
        data = request.get_json()
        if data["mode"] not in ("a", "b"):
            abort(400)
        subprocess.run("run " + data["mode"], shell=True)
        subprocess.run("run " + data["other"], shell=True)
    """})
    assert lines_of(findings) == [("app.py", 13), ("app.py", 18)]


def test_module_qualified_flask_request_is_a_source(tmp_path):
    findings = run(tmp_path, {"app.py": """
        import os
        import flask

        def helper():
            os.system("echo " + flask.request.args["x"])
    """})
    assert lines_of(findings) == [("app.py", 6)]


def test_keyword_arguments_collected_by_kwargs_are_not_mass_assignment(tmp_path):
    findings = run(tmp_path, {
        "app/__init__.py": "",
        "app/models.py": """
            from django.db import models
            class Post(models.Model):
                title = models.CharField(max_length=10)
        """,
        "app/services.py": """
            from .models import Post

            def create_post(**fields):
                return Post.objects.create(**fields)
        """,
        "app/views.py": """
            from .services import create_post

            def v(request):
                create_post(title=request.POST["title"])
                create_post(**request.POST.dict())
        """,
    })
    assert lines_of(findings) == [("app/services.py", 5)]
    assert findings[0].message.startswith('request.POST reaches')


def test_library_functions_pass_on_their_first_argument_unless_listed(tmp_path):
    findings = run(tmp_path, {"views.py": """
        from urllib.parse import urljoin
        from django.http import HttpResponseRedirect
        from django.urls import translate_url

        def v(request):
            lang = request.POST["language"]
            HttpResponseRedirect(translate_url("/en/about/", lang))
            HttpResponseRedirect(urljoin("/base/", request.POST["next"]))
    """})
    assert lines_of(findings) == [("views.py", 9)]


def test_file_objects_and_signed_payloads_are_not_paths_or_unsafe_pickles(tmp_path):
    findings = run(tmp_path, {"app.py": FLASK_HEAD + """
    import io, pickle
    from django.core import signing
    from flask import send_file

    @app.route("/a")
    def a():
        data = request.args["d"]
        buf = io.BytesIO(data.encode())
        send_file(buf, download_name="x.txt")
        send_file(io.BytesIO(data.encode()))
        pickle.loads(signing.loads(request.cookies["s"]))
        send_file(data)
    """})
    assert lines_of(findings) == [("app.py", 19)]


def test_test_modules_are_not_analyzed(tmp_path):
    findings = run(tmp_path, {"test_views.py": """
        import os
        import pytest
        from flask import request

        def helper():
            os.system("echo " + request.args["x"])
    """})
    assert findings == []


def test_constructor_fields_are_tracked_one_by_one(tmp_path):
    findings = run(tmp_path, {
        "app/__init__.py": "",
        "app/reports.py": """
            from django.db import connection

            class Report:
                def __init__(self, user_filter, table="reports"):
                    self.filter = user_filter
                    self.table = table

                def run(self):
                    cur = connection.cursor()
                    cur.execute(f"SELECT * FROM {self.table} WHERE owner = %s", [self.filter])
                    cur.execute(f"SELECT * FROM {self.table} WHERE owner = '{self.filter}'")
        """,
        "app/views.py": """
            from .reports import Report

            def v(request):
                Report(request.GET["owner"]).run()
                report = Report(request.GET["owner"])
                report.run()
        """,
    })
    assert lines_of(findings) == [("app/reports.py", 12)]


def test_a_flask_request_passed_to_a_helper_is_a_request_object(tmp_path):
    findings = run(tmp_path, {
        "app/__init__.py": "",
        "app/paging.py": """
            def page_size(request):
                return int(request.args.get("size", 20))
        """,
        "app/views.py": """
            from flask import Flask, request
            from .paging import page_size
            app = Flask(__name__)

            @app.route("/x")
            def x():
                return {"rows": Book.query.limit(page_size(request)).all()}
        """,
    })
    assert [(f.path, f.line, f.rule) for f in findings] == [("app/views.py", 8, "BA310")]


def test_validator_functions_called_as_statements(tmp_path):
    findings = run(tmp_path, {
        "app/__init__.py": "",
        "app/checks.py": """
            import logging
            from flask import abort
            SORTS = {"name", "date"}

            def require_sort(value):
                if value not in SORTS:
                    abort(400)

            def warn_sort(value):
                if value not in SORTS:
                    logging.warning("odd sort %s", value)

            def reset_sort(value):
                value = "name"
        """,
        "app/views.py": """
            import sqlite3
            from flask import Flask, request
            from .checks import require_sort, reset_sort, warn_sort
            app = Flask(__name__)

            @app.route("/x")
            def x():
                cur = sqlite3.connect("x").cursor()
                a = request.args["a"]
                require_sort(a)
                cur.execute(f"SELECT * FROM t ORDER BY {a}")
                b = request.args["b"]
                warn_sort(b)
                cur.execute(f"SELECT * FROM t ORDER BY {b}")
                c = request.args["c"]
                reset_sort(c)
                cur.execute(f"SELECT * FROM t ORDER BY {c}")
        """,
    })
    assert lines_of(findings) == [("app/views.py", 15), ("app/views.py", 18)]


def test_unvalidated_data_converted_after_a_look_alike_check_keeps_its_taint(tmp_path):
    findings = run(tmp_path, {"app.py": FLASK_HEAD + """
    import sqlite3

    def note(value):
        print("checking", value)

    @app.route("/a")
    def a():
        n = request.args["n"]
        note(n)
        cur = sqlite3.connect("x").cursor()
        cur.execute(f"SELECT * FROM t LIMIT {int(n)}")
    """})
    assert [(f.line, f.rule) for f in findings] == [(18, "BA310")]


def test_url_typed_parameters_still_choose_where_a_request_goes(tmp_path):
    findings = run(tmp_path, {"main.py": """
        import requests
        from fastapi import FastAPI
        from pydantic import HttpUrl
        app = FastAPI()

        @app.get("/fetch")
        def fetch(url: HttpUrl, n: int = 3):
            return requests.get(str(url), timeout=n).text
    """})
    assert [(f.line, f.rule) for f in findings] == [(9, "BA306")]


def test_dict_comprehensions_over_allowed_fields_are_not_mass_assignment(tmp_path):
    findings = run(tmp_path, {
        "app/__init__.py": "",
        "app/models.py": """
            from django.db import models
            class Post(models.Model):
                title = models.CharField(max_length=10)
        """,
        "app/views.py": """
            from .models import Post
            FIELDS = ("title", "body")

            def v(request):
                data = request.POST
                Post.objects.create(**{k: data[k] for k in FIELDS if k in data})
                Post.objects.create(**{k: v for k, v in data.items() if k in FIELDS})
                Post.objects.create(**{k: v for k, v in data.items()})
        """,
    })
    assert lines_of(findings) == [("app/views.py", 9)]


def test_findings_and_flows_are_the_same_on_every_run():
    import json
    import os
    import subprocess
    import sys

    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-m", "backend_audit", str(FIXTURES / "ui_flask_notes"), "--no-llm",
                               "--no-cache", "--format", "json", "--select", "BA3"], capture_output=True, text=True,
                              env=env, timeout=120, check=False)
        doc = json.loads(proc.stdout)
        outputs.append([(f["path"], f["line"], f["message"], f["flow"]) for f in doc["findings"]])
    assert outputs[0] and outputs[0] == outputs[1]


def test_properties_computed_from_request_data(tmp_path):
    findings = run(tmp_path, {"views.py": """
        from django.db import connection
        from django.views import View

        class Search(View):
            @property
            def term(self):
                return self.request.GET.get("q", "")

            @property
            def table(self):
                return "posts"

            def get(self, request):
                connection.cursor().execute(f"SELECT * FROM {self.table} WHERE t = '{self.term}'")
                connection.cursor().execute(f"SELECT * FROM {self.table}")
    """})
    assert lines_of(findings) == [("views.py", 15)]


def test_nested_functions_see_the_enclosing_request_data(tmp_path):
    findings = run(tmp_path, {"app.py": FLASK_HEAD + """
    @app.route("/a")
    def a():
        q = request.args["q"]
        safe = "ls"

        def run():
            subprocess.run("grep " + q, shell=True)
            subprocess.run(safe, shell=True)

        run()
    """})
    assert lines_of(findings) == [("app.py", 14)]


def test_properties_over_constructor_fields(tmp_path):
    findings = run(tmp_path, {"app.py": """
        import os

        class Job:
            def __init__(self, name):
                self.name = name

            @property
            def command(self):
                return "run " + self.name

            def start(self):
                os.system(self.command)

        def view(request):
            Job(request.GET["n"]).start()
            Job("nightly").start()
    """})
    assert lines_of(findings) == [("app.py", 13)]


def test_referer_redirects_are_open_redirects_unless_checked(tmp_path):
    findings = run(tmp_path, {
        "dj.py": """
            from django.shortcuts import redirect
            from django.utils.http import url_has_allowed_host_and_scheme

            def back(request):
                return redirect(request.META.get("HTTP_REFERER", "/"))

            def back_checked(request):
                ref = request.META.get("HTTP_REFERER", "/")
                if not url_has_allowed_host_and_scheme(ref, allowed_hosts={request.get_host()}):
                    ref = "/"
                return redirect(ref)
        """,
        "st.py": """
            from urllib.parse import urlparse
            from starlette.requests import Request
            from starlette.responses import RedirectResponse

            async def back(request: Request):
                return RedirectResponse(request.headers.get("referer"))

            async def same_host(request: Request):
                ref = request.headers.get("referer", "/")
                if urlparse(ref).netloc != request.url.netloc:
                    return RedirectResponse("/")
                return RedirectResponse(ref)

            async def same_host_logged_only(request: Request):
                ref = request.headers.get("referer", "/")
                if urlparse(ref).netloc != request.url.netloc:
                    print("foreign", ref)
                return RedirectResponse(ref)

            async def against_another_header(request: Request):
                ref = request.headers.get("referer", "/")
                if urlparse(ref).netloc != request.headers.get("x-forwarded-host"):
                    return RedirectResponse("/")
                return RedirectResponse(ref)
        """,
        "fl.py": """
            from urllib.parse import urlparse
            from flask import Flask, redirect, request
            app = Flask(__name__)

            @app.route("/back")
            def back():
                return redirect(request.referrer or "/")

            @app.route("/back-safe")
            def back_safe():
                ref = request.referrer or "/"
                return redirect(ref if urlparse(ref).netloc == request.host else "/")
        """,
    })
    assert lines_of(findings, "BA305") == [("dj.py", 6), ("fl.py", 8), ("st.py", 7), ("st.py", 19), ("st.py", 25)]


def test_closures_carry_the_enclosing_functions_data_to_their_sinks(tmp_path):
    findings = run(tmp_path, {"app.py": """
        import asyncio
        import os
        from asgiref.sync import sync_to_async
        ROOT = "/srv/files"

        async def store(name, data):
            def _write():
                with open(os.path.join(ROOT, name), "wb") as fh:
                    fh.write(data)
            await asyncio.to_thread(_write)

        async def store_safe(name, data):
            name = os.path.basename(name)
            def _write():
                with open(os.path.join(ROOT, name), "wb") as fh:
                    fh.write(data)
            await asyncio.to_thread(_write)

        def deleter(name):
            def _delete():
                os.remove(os.path.join(ROOT, name))
            return _delete

        async def view(request):
            field = (await request.post())["file"]
            await store(field.filename, field.file)
            await store_safe(field.filename, field.file)
            deleter(request.GET["old"])()
            deleter("tmp.txt")()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, lambda: os.remove(os.path.join(ROOT, request.GET["x"])))
            await loop.run_in_executor(None, lambda n: os.remove(os.path.join(ROOT, n)), "fixed")
            path = os.path.join(ROOT, request.GET["p"])

            @sync_to_async
            def _read():
                return open(path).read()

            def _read_fixed(path=ROOT + "/index.txt"):
                return open(path).read()

            await _read()
            await asyncio.to_thread(_read_fixed)
    """})
    assert lines_of(findings, "BA304") == [("app.py", 9), ("app.py", 22), ("app.py", 32), ("app.py", 38)]
    flow = next(f for f in findings if f.line == 9).flow
    assert flow[0].line == 26 and "request.post()" in flow[0].message


def test_uploaded_files_carry_client_filenames_to_path_sinks(tmp_path):
    findings = run(tmp_path, {
        "fl.py": """
            import os
            import uuid
            from flask import Flask, request
            from werkzeug.utils import secure_filename
            app = Flask(__name__)
            UPLOADS = "/srv/up"

            @app.route("/up", methods=["POST"])
            def up():
                f = request.files["f"]
                f.save(os.path.join(UPLOADS, f.filename))
                f.save(os.path.join(UPLOADS, secure_filename(f.filename)))
                f.save(os.path.join(UPLOADS, uuid.uuid4().hex))
                report = build_report()
                report.save(os.path.join(UPLOADS, "report.pdf"))

            def build_report():
                return None
        """,
        "aio.py": """
            import os
            from aiohttp import web
            from werkzeug.utils import secure_filename

            async def up(request):
                reader = await request.multipart()
                field = await reader.next()
                with open(os.path.join("/srv/up", field.filename), "wb") as fh:
                    fh.write(await field.read())
                with open(os.path.join("/srv/up", secure_filename(field.filename)), "wb") as fh:
                    fh.write(await field.read())
                return web.Response()
        """,
        "dj.py": """
            import uuid
            from django.core.files.storage import default_storage

            def up(request):
                f = request.FILES["f"]
                default_storage.save("avatars/" + f.name, f)
                default_storage.save(f"avatars/{uuid.uuid4().hex}.png", f)
        """,
    })
    assert lines_of(findings, "BA304") == [("aio.py", 9), ("dj.py", 7), ("fl.py", 12)]


def test_methods_of_objects_in_the_application_registry_are_linked(tmp_path):
    findings = run(tmp_path, {
        "svc/__init__.py": "",
        "svc/repo.py": """
            class ItemRepository:
                def __init__(self, pool):
                    self.pool = pool

                async def search(self, term, sort):
                    sql = "SELECT id FROM items WHERE name LIKE %s ORDER BY " + sort
                    async with self.pool.acquire() as conn:
                        async with conn.cursor() as cur:
                            await cur.execute(sql, ("%" + term + "%",))

                async def safe(self, term, sort):
                    async with self.pool.acquire() as conn:
                        async with conn.cursor() as cur:
                            await cur.execute("SELECT id FROM items WHERE name = %s", (term,))

            class StockRepository:
                def in_warehouse(self, cur, warehouse):
                    cur.execute("SELECT sku FROM stock WHERE w = '%s'" % warehouse)

            class Cache:
                def search(self, term, sort):
                    return {}
        """,
        "svc/keys.py": """
            from aiohttp import web
            from .repo import StockRepository
            STOCK = web.AppKey("stock", StockRepository)
        """,
        "svc/app.py": """
            from aiohttp import web
            from .keys import STOCK
            from .repo import Cache, ItemRepository

            async def search(request):
                term, sort = request.query.get("q", ""), request.query.get("sort", "id")
                await request.app["repo"].search(term, sort)
                await request.app["repo"].safe(term, sort)
                await request.app["cache"].search(term, sort)
                await request.app["unknown"].search(term, sort)
                repo = request.config_dict["repo"]
                await repo.search(term, sort)
                request.app[STOCK].in_warehouse(None, request.match_info["w"])

            async def on_startup(app):
                app["repo"] = ItemRepository(None)
                app["cache"] = Cache()
        """,
        "st/__init__.py": "",
        "st/main.py": """
            from fastapi import FastAPI, Request
            from svc.repo import ItemRepository
            app = FastAPI()
            app.state.items = ItemRepository(None)

            @app.get("/s")
            async def s(request: Request, sort: str):
                await request.app.state.items.search("x", sort)
                await request.app.state.other.search("x", sort)
        """,
    })
    got = [(f.rule, f.path, f.line) for f in findings]
    assert got == [("BA301", "svc/repo.py", 10), ("BA301", "svc/repo.py", 19)]
    f = next(f for f in findings if f.line == 10)
    # three reads reach it: request.app["repo"], request.config_dict["repo"], app.state.items
    starts = [r.line for r in f.related if r.path != "svc/repo.py" and
              (r.message.startswith("source:") or r.message.startswith("also reaches"))]
    assert len(starts) >= 2


def test_the_registry_read_alone_does_not_guess_a_class(tmp_path):
    findings = run(tmp_path, {"app.py": """
        from aiohttp import web

        class Repo:
            def search(self, cur, sort):
                cur.execute("SELECT id FROM t ORDER BY " + sort)

        async def h(request):
            request.app["repo"].search(None, request.query["sort"])
            registry = {"repo": Repo()}
            registry["repo"].search(None, request.query["sort"])
    """})
    assert findings == []


def test_registry_keys_name_driver_objects_and_flask_globals(tmp_path):
    findings = run(tmp_path, {"app.py": """
        import asyncpg
        from flask import Flask, g, request
        app = Flask(__name__)

        class Repo:
            def search(self, cur, sort):
                cur.execute("SELECT id FROM t ORDER BY " + sort)

        @app.before_request
        def attach():
            g.repo = Repo()

        @app.route("/s")
        def s():
            g.repo.search(None, request.args["sort"])
            g.other.search(None, request.args["sort"])

        async def h(request):
            q = request.query["q"]
            await request.app["pool"].fetch(f"SELECT * FROM t WHERE a = '{q}'")
            await request.app["pool"].fetch("SELECT * FROM t WHERE a = $1", q)

        async def startup(app):
            app["pool"] = await asyncpg.create_pool("x")
    """})
    assert lines_of(findings, "BA301") == [("app.py", 8), ("app.py", 21)]


def test_nested_functions_of_handlers_and_lifespan_stores(tmp_path):
    findings = run(tmp_path, {"app.py": """
        import os
        import shlex
        from contextlib import asynccontextmanager
        from flask import Flask, Response
        from fastapi import FastAPI, Request
        app = Flask(__name__)
        BASE = "/srv"

        @app.route("/d/<path:name>")
        def download(name):
            def gen():
                with open(os.path.join(BASE, name)) as fh:
                    yield fh.read()
            return Response(gen())

        @app.route("/n/<int:n>")
        def numbered(n):
            def gen():
                with open(os.path.join(BASE, f"{n}.txt")) as fh:
                    yield fh.read()
            return Response(gen())

        def view(request):
            def _inner():
                os.system("ls " + request.GET["d"])
            quoted = shlex.quote(request.GET["d"])
            def _quoted():
                os.system("ls " + quoted)
            _inner()
            _quoted()

        class Repo:
            def search(self, cur, sort):
                cur.execute("SELECT id FROM t ORDER BY " + sort)

        @asynccontextmanager
        async def lifespan(api):
            repo = Repo()
            api.state.repo = repo
            yield

        api = FastAPI(lifespan=lifespan)

        @api.get("/x")
        def x(request: Request, sort: str):
            request.app.state.repo.search(None, sort)
            request.app.state.repo.search(None, "name")
    """})
    assert lines_of(findings) == [("app.py", 13), ("app.py", 26), ("app.py", 35)]


def test_functions_run_in_threads_and_tasks_receive_the_arguments_after_them(tmp_path):
    findings = run(tmp_path, {"app.py": """
        import asyncio
        import os
        from concurrent.futures import ThreadPoolExecutor
        from asgiref.sync import sync_to_async
        from fastapi import BackgroundTasks, FastAPI
        api = FastAPI()
        pool = ThreadPoolExecutor()

        def save_a(name, data):
            open(name, "wb").write(data)

        def save_b(name, data):
            open(name, "wb").write(data)

        def save_c(name, data):
            open(name, "wb").write(data)

        def save_d(name, data):
            open(name, "wb").write(data)

        def save_e(name, data):
            open(name, "wb").write(data)

        def save_f(name, data):
            open(name, "wb").write(data)

        async def h(request):
            field = (await request.post())["f"]
            await asyncio.to_thread(save_a, field.filename, b"x")
            await asyncio.to_thread(save_f, "fixed.txt", field.file)
            await asyncio.get_running_loop().run_in_executor(None, save_b, field.filename, b"")
            pool.submit(save_c, field.filename, b"")
            await sync_to_async(save_d)(field.filename, b"")
            await asyncio.to_thread(print, field.filename)

        @api.post("/u")
        def u(name: str, tasks: BackgroundTasks):
            tasks.add_task(save_e, name, b"")
            tasks.add_task(save_f, "fixed.txt", name)
    """})
    assert lines_of(findings, "BA304") == [("app.py", 11), ("app.py", 14), ("app.py", 17), ("app.py", 20), ("app.py", 23)]


def test_objects_kept_as_app_attributes_and_the_wsgi_environ(tmp_path):
    findings = run(tmp_path, {"app.py": """
        from flask import Flask, current_app, redirect, request
        app = Flask(__name__)

        class Repo:
            def search(self, cur, sort):
                cur.execute("SELECT id FROM t ORDER BY " + sort)

        app.repo = Repo()

        @app.route("/s")
        def s():
            current_app.repo.search(None, request.args["sort"])
            current_app.other.search(None, request.args["sort"])
            current_app.repo.search(None, "name")
            return redirect(request.environ.get("HTTP_REFERER", "/"))
    """})
    assert [(f.rule, f.line) for f in findings] == [("BA301", 7), ("BA305", 16)]


def test_execute_is_sql_only_on_a_database_receiver(tmp_path):
    """`.execute()` of an HTTP API client (a project class on a non-database base, another
    library's class, an unknown object with an unrelated name) sends no SQL; a cursor or
    connection (by its type, its origin or its name) does."""
    findings = run(tmp_path, {
        "pay/__init__.py": "",
        "pay/client.py": """
            from paypalhttp import HttpClient

            class PayClient(HttpClient):
                pass

            class OrdersGetRequest:
                def __init__(self, order_id):
                    self.path = "/v2/checkout/orders/" + order_id
        """,
        "pay/views.py": """
            import psycopg2
            from django.db import connection
            from gql import Client, gql
            from .client import OrdersGetRequest, PayClient

            class Provider:
                def __init__(self):
                    self.client = PayClient("live")

                def order(self, order_id):
                    return self.client.execute(OrdersGetRequest(order_id))

            class Ledger:
                def __init__(self):
                    self.conn = psycopg2.connect("dbname=x")

                def rows(self, account):
                    self.conn.cursor().execute("SELECT * FROM t WHERE a = '" + account + "'")

            def by_param(cur, where):
                cur.execute("SELECT * FROM t WHERE " + where)

            def by_conn(conn, where):
                conn.execute("SELECT * FROM t WHERE " + where)

            def dispatch(runner, job):
                runner.execute(job)

            def view(request):
                Provider().order(request.GET["token"])
                PayClient("x").execute(OrdersGetRequest(request.GET["id"]))
                Client(transport=None).execute(gql(request.body.decode()))
                dispatch(object(), request.POST["job"])
                Ledger().rows(request.GET["account"])
                by_param(None, request.GET["w"])
                by_conn(None, request.GET["w"])
                with connection.cursor() as c:
                    c.execute("SELECT * FROM t WHERE s = '%s'" % request.GET["s"])
        """,
    })
    assert [(f.rule, f.line) for f in findings] == [("BA301", 19), ("BA301", 22), ("BA301", 25), ("BA301", 39)]


def test_db_receiver_types_come_from_the_catalog(tmp_path):
    """An instance of a library class is a database object when the catalog lists its module."""
    (tmp_path / "app.py").write_text(textwrap.dedent("""
        from flask import Flask, request
        from vendordb import Warehouse
        app = Flask(__name__)

        @app.route("/a")
        def a():
            Warehouse().execute("SELECT * FROM t WHERE a = '" + request.args["a"] + "'")
    """), "utf-8")
    extra = tmp_path.parent / f"{tmp_path.name}-extra.toml"
    extra.write_text('[catalog.taint]\ndb_modules = ["vendordb"]\n', "utf-8")

    def scan_with(catalog):
        return scan(ScanOptions(paths=[str(tmp_path)], use_cache=False, jobs=1), catalog,
                    analyzers=[UnvalidatedInputAnalyzer()]).findings

    assert scan_with(load_catalog()) == []
    assert lines_of(scan_with(load_catalog((str(extra),)))) == [("app.py", 8)]


@pytest.mark.parametrize("check, flagged", [
    # the very access path checked in the test, used in the branch it guards
    ("""if "next" in self.request.GET and url_has_allowed_host_and_scheme(self.request.GET.get("next"), allowed_hosts=None):
            return redirect(self.request.GET.get("next"))""", False),
    ("""if url_has_allowed_host_and_scheme(self.request.GET["next"], allowed_hosts=None):
            return redirect(self.request.GET.get("next"))""", False),
    # the failing branch leaves: clean after it
    ("""if not url_has_allowed_host_and_scheme(self.request.GET.get("next"), allowed_hosts=None):
            return redirect("/")
        return redirect(self.request.GET["next"])""", False),
    # look-alikes
    ("""if url_has_allowed_host_and_scheme(self.request.GET.get("next"), allowed_hosts=None):
            return redirect(self.request.GET.get("back"))""", True),   # another key
    ("""if url_has_allowed_host_and_scheme(self.request.GET.get("next"), allowed_hosts=None):
            return redirect(self.request.POST.get("next"))""", True),  # another mapping
    ("""if url_has_allowed_host_and_scheme(self.request.GET.get("next"), allowed_hosts=None):
            pass
        return redirect(self.request.GET.get("next"))""", True),       # does not leave
    ("""if "next" in self.request.GET or url_has_allowed_host_and_scheme(self.request.GET.get("next"), allowed_hosts=None):
            return redirect(self.request.GET.get("next"))""", True),   # `or`
    ("""try:
            if not url_has_allowed_host_and_scheme(self.request.GET.get("next"), allowed_hosts=None):
                raise ValueError()
        except ValueError:
            pass
        return redirect(self.request.GET.get("next"))""", True),       # swallowed
])
def test_a_guard_on_an_access_path_cleans_that_path(tmp_path, check, flagged):
    body = textwrap.dedent("""
        from django.shortcuts import redirect
        from django.utils.http import url_has_allowed_host_and_scheme
        from django.views import View

        class Done(View):
            def post(self, request):
                CHECK
                return redirect("/")
    """).replace("CHECK", check)
    findings = run(tmp_path, {"views.py": body})
    assert bool(findings) is flagged, [f.message for f in findings]


def test_dict_keys_from_a_constant_list_are_not_mass_assignment(tmp_path):
    findings = run(tmp_path, {"app/__init__.py": "", "app/models.py": """
        from django.db import models

        class Post(models.Model):
            title = models.CharField(max_length=10)
    """, "app/views.py": """
        from django.views import View
        from .models import Post

        FIELDS = ("title", "slug")

        class Choose(View):
            url_filter_parameters = ["title", "slug"]

            def get(self, request):
                filters = {}
                for name in self.url_filter_parameters:
                    if name in self.request.GET:
                        filters[name] = self.request.GET[name]
                Post.objects.filter(**filters)
                picked = dict((f, request.GET[f]) for f in FIELDS)
                Post.objects.filter(**picked)
                chosen = {f: request.GET.get(f) for f in FIELDS}
                Post.objects.filter(**chosen)
                given = {k: v for k, v in request.GET.items()}
                Post.objects.filter(**given)
                asked = {}
                for f in request.GET.getlist("field"):
                    asked[f] = request.GET.get(f)
                Post.objects.filter(**asked)
                mixed = {}
                for f in FIELDS:
                    mixed[f] = request.GET.get(f)
                f = request.GET["other"]
                mixed[f] = request.GET.get("value")
                Post.objects.filter(**mixed)
                Post.objects.create(**request.POST.dict())
    """})
    assert lines_of(findings, "BA309") == [("app/views.py", 21), ("app/views.py", 25), ("app/views.py", 31),
                                           ("app/views.py", 32)]


def test_fetch_is_sql_on_a_pooled_connection_not_on_an_http_client(tmp_path):
    findings = run(tmp_path, {"svc.py": """
        from tornado.httpclient import AsyncHTTPClient

        async def handler(request):
            q = request.query["q"]
            async with request.app["pool"].acquire() as con:
                rows = await con.fetch("SELECT * FROM t WHERE a = '" + q + "'")
            body = await AsyncHTTPClient().fetch("https://api.example.com/?q=" + q)
            http = request.app["http"]
            page = await http.fetch(q)
            return rows, body, page
    """})
    assert [(f.rule, f.line) for f in findings] == [("BA301", 7)]


PREDICATES = """
    import re
    from django.utils.http import url_has_allowed_host_and_scheme

    SORTS = ("name", "price")
    SLUG_RE = re.compile(r"[a-z0-9-]+")
    LOOSE_RE = re.compile(r"[a-z0-9-]+")

    def _is_sort(value):
        return value in SORTS

    def valid_slug(s):
        return bool(SLUG_RE.fullmatch(s))

    def is_allowed(u):
        return url_has_allowed_host_and_scheme(u, allowed_hosts={"example.com"})

    def sort_ok(value):
        return _is_sort(value)

    def is_known(value):
        if value not in SORTS:
            return False
        return True

    def is_valid_sort(value):
        return len(value) < 100

    def validate_sort(v):
        return bool(v)

    def is_safe_word(s):
        return LOOSE_RE.match(s) is not None

    def is_valid_term(s):
        print("checking", s)
        return True
"""


@pytest.mark.parametrize("check,flagged", [
    ("_is_sort", False),     # `return value in SORTS`: a constant allow-list
    ("valid_slug", False),   # fullmatch of a compiled pattern
    ("sort_ok", False),      # a predicate that calls a predicate (interprocedural)
    ("is_known", False),     # `if value not in SORTS: return False` ... `return True`
    ("is_valid_sort", True),  # a length bound is no validation, whatever the name says
    ("validate_sort", True),  # truthiness
    ("is_safe_word", True),   # unanchored re.match
    ("is_valid_term", True),  # logs and accepts everything
])
def test_project_predicates_are_judged_by_their_body(tmp_path, check, flagged):
    findings = run(tmp_path, {
        "shop/__init__.py": "",
        "shop/checks.py": PREDICATES,
        "shop/views.py": f"""
            from django.db import connection
            from django.http import HttpResponseBadRequest
            from .checks import {check}

            def items(request):
                sort = request.GET.get("sort", "name")
                if not {check}(sort):
                    return HttpResponseBadRequest()
                connection.cursor().execute("SELECT id FROM t ORDER BY " + sort)

            def items_if(request):
                sort = request.GET.get("sort", "name")
                if {check}(sort):
                    connection.cursor().execute("SELECT id FROM t ORDER BY " + sort)
        """,
    })
    expected = [("shop/views.py", 10), ("shop/views.py", 15)] if flagged else []
    assert lines_of(findings, "BA301") == expected


def test_a_predicate_cleans_only_the_branch_it_guards(tmp_path):
    findings = run(tmp_path, {
        "shop/__init__.py": "",
        "shop/checks.py": PREDICATES,
        "shop/views.py": """
            from django.db import connection
            from django.shortcuts import redirect
            from .checks import is_allowed, valid_slug

            def item(request):
                slug = request.GET.get("slug", "")
                if valid_slug(slug):
                    connection.cursor().execute("SELECT id FROM t WHERE slug = '%s'" % slug)
                connection.cursor().execute("SELECT id FROM t WHERE slug = '%s'" % slug)

            def go(request):
                target = request.GET.get("next", "/")
                if is_allowed(target):
                    return redirect(target)
                return redirect(request.GET.get("fallback", "/"))
        """,
    })
    assert lines_of(findings) == [("shop/views.py", 10), ("shop/views.py", 16)]


def test_a_validator_named_predicate_without_a_visible_body_still_counts_by_name(tmp_path):
    findings = run(tmp_path, {
        "shop/__init__.py": "",
        "shop/views.py": """
            from django.db import connection
            from django.http import HttpResponseBadRequest
            from shop.vendored_checks import is_safe_sort

            def items(request):
                sort = request.GET.get("sort", "name")
                if not is_safe_sort(sort):
                    return HttpResponseBadRequest()
                connection.cursor().execute("SELECT id FROM t ORDER BY " + sort)
        """,
    })
    assert lines_of(findings) == []


REPO = """
    import sqlite3

    class ItemRepository:
        def __init__(self, path):
            self.conn = sqlite3.connect(path)

        def search(self, term, sort):
            sql = "SELECT id FROM items WHERE name LIKE ? ORDER BY " + sort
            cur = self.conn.cursor()
            cur.execute(sql, ("%" + term + "%",))
            return cur.fetchall()

        def by_warehouse(self, warehouse):
            cur = self.conn.cursor()
            cur.execute("SELECT sku FROM stock WHERE w = '%s'" % warehouse)
            return cur.fetchall()

        def by_warehouse_safe(self, warehouse):
            cur = self.conn.cursor()
            cur.execute("SELECT sku FROM stock WHERE w = ?", (warehouse,))
            return cur.fetchall()
"""


@pytest.mark.parametrize("setup,call", [
    ('repo: ItemRepository = request.app["repo"]', "asyncio.to_thread(repo.{m}, {a})"),
    ('repo = ItemRepository("x.db")', "asyncio.get_running_loop().run_in_executor(None, repo.{m}, {a})"),
    ('repo = request.app["repo"]', "asyncio.to_thread(repo.{m}, {a})"),
    ('repo = ItemRepository("x.db")', "asyncio.to_thread(functools.partial(repo.{m}, {a}))"),
])
def test_bound_methods_handed_to_offloaders_receive_the_arguments(tmp_path, setup, call):
    findings = run(tmp_path, {
        "shop/__init__.py": "",
        "shop/repo.py": REPO,
        "shop/app.py": """
            from aiohttp import web
            from .repo import ItemRepository

            def make_app():
                app = web.Application()
                app["repo"] = ItemRepository("x.db")
                return app
        """,
        "shop/views.py": f"""
            import asyncio
            import functools
            from aiohttp import web
            from .repo import ItemRepository

            routes = web.RouteTableDef()

            @routes.get("/items")
            async def items(request):
                {setup}
                sort = request.query.get("sort", "name")
                rows = await {call.format(m="search", a='request.query.get("q", ""), sort')}
                return web.json_response(rows)

            @routes.get("/stock")
            async def stock(request):
                {setup}
                code = request.query.get("w", "")
                rows = await {call.format(m="by_warehouse", a="code")}
                rows += await {call.format(m="by_warehouse_safe", a="code")}
                return web.json_response(rows)
        """,
    })
    assert lines_of(findings, "BA301") == [("shop/repo.py", 11), ("shop/repo.py", 16)]


def test_a_bound_method_on_a_typed_self_attribute_is_linked(tmp_path):
    findings = run(tmp_path, {
        "shop/__init__.py": "",
        "shop/repo.py": REPO,
        "shop/views.py": """
            import asyncio
            from aiohttp import web
            from .repo import ItemRepository

            class StockView:
                def __init__(self, repo: ItemRepository):
                    self.repo = repo

                async def get(self, request):
                    code = request.query.get("w", "")
                    return web.json_response(await asyncio.to_thread(self.repo.by_warehouse, code))
        """,
    })
    assert lines_of(findings, "BA301") == [("shop/repo.py", 16)]


def test_declared_type_of_a_registry_object_wins_when_the_request_is_annotated(tmp_path):
    # with `request: web.Request` the value `request.app["repo"]` has a (useless) known ref; the
    # declared class must still type `repo`, so the offloaded bound method carries the taint
    findings = run(tmp_path, {
        "cat/__init__.py": "",
        "cat/storage.py": """
            import psycopg2

            class ItemRepository:
                def __init__(self, dsn):
                    self.conn = psycopg2.connect(dsn)

                def search(self, term, sort):
                    sql = "SELECT id FROM items WHERE name = %s ORDER BY " + sort
                    with self.conn.cursor() as cur:
                        cur.execute(sql, (term,))
                        return cur.fetchall()

                def safe(self, term):
                    with self.conn.cursor() as cur:
                        cur.execute("SELECT id FROM items WHERE name = %s", (term,))
                        return cur.fetchall()
        """,
        "cat/handlers.py": """
            import asyncio
            from aiohttp import web
            from .storage import ItemRepository

            async def search(request: web.Request) -> web.Response:
                repo: ItemRepository = request.app["repo"]
                rows = await asyncio.to_thread(repo.search, request.query.get("q", ""), request.query.get("sort"))
                await asyncio.to_thread(repo.safe, request.query.get("q", ""))
                return web.json_response(rows)
        """,
    })
    assert lines_of(findings) == [("cat/storage.py", 11)]
