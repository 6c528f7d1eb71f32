"""The N+1 analyzer on small real projects written to a temporary directory (no network)."""

from __future__ import annotations

import ast
import pickle
import re
import textwrap
from pathlib import Path

import pytest

from backend_audit.analyzers.base import FileUnit
from backend_audit.analyzers.n_plus_one import NPlusOneAnalyzer
from backend_audit.analyzers.n_plus_one.templates import collect_template, template_name
from backend_audit.catalog import load_catalog
from backend_audit.engine import ScanOptions, scan
from backend_audit.parsing.summary import LineIndex, summarize_module

MODELS = '''
from django.db import models


class Publisher(models.Model):
    name = models.CharField(max_length=100)


class Author(models.Model):
    name = models.CharField(max_length=100)
    publisher = models.ForeignKey(Publisher, on_delete=models.CASCADE)


class Tag(models.Model):
    name = models.CharField(max_length=50)


class Book(models.Model):
    title = models.CharField(max_length=200)
    summary = models.TextField()
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
    tags = models.ManyToManyField(Tag)
'''


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"), "utf-8")
    return root


@pytest.fixture(autouse=True)
def _debug(monkeypatch):
    """Analyzer bugs raise in tests instead of being logged and skipped."""
    monkeypatch.setenv("BACKEND_AUDIT_DEBUG", "1")


def run(root: Path):
    result = scan(ScanOptions(paths=[str(root)], use_cache=False, jobs=1), load_catalog(),
                  analyzers=[NPlusOneAnalyzer()])
    assert not [e for e in result.errors if e.kind == "analyzer-error"], result.errors
    return result.findings


def marked(root: Path, rel: str, marker: str = "# N1") -> set[int]:
    lines = (root / rel).read_text("utf-8").splitlines()
    return {i for i, line in enumerate(lines, 1) if marker in line}


def django_project(tmp_path: Path, code: str, extra: dict[str, str] | None = None) -> Path:
    files = {"app/__init__.py": "", "app/models.py": MODELS, "app/code.py": code}
    files.update(extra or {})
    return write(tmp_path, files)


def test_forward_fk_per_row_is_reported_at_the_access_with_the_exact_fix(tmp_path):
    root = django_project(tmp_path, '''
        from .models import Book


        def names():
            for book in Book.objects.filter(title__startswith="A"):
                print(book.author.name)  # N1
                print(book.author_id)
            return [b.author.id for b in Book.objects.all()]  # N1
        ''')
    found = run(root)
    assert {f.line for f in found} == marked(root, "app/code.py")
    first = min(found, key=lambda f: f.line)
    assert first.rule == "BA101" and first.category == "n-plus-one"
    assert first.context["fix"] == 'select_related("author")'
    assert first.context["model"] == "Book" and first.context["relation"] == "author"
    assert first.context["queryset_line"] == 5
    assert any(r.line == 5 for r in first.related)


def test_eager_loading_along_paths_prevents_findings(tmp_path):
    root = django_project(tmp_path, '''
        from django.db.models import Prefetch
        from .models import Author, Book


        def fine():
            qs = Book.objects.all()
            qs = qs.select_related("author__publisher").prefetch_related("tags")
            for b in qs:
                print(b.author.publisher.name, [t.name for t in b.tags.all()], b.tags.count())
            authors = Author.objects.prefetch_related(Prefetch("books", queryset=Book.objects.select_related("author")))
            for a in authors:
                for b in a.books.all():
                    print(b.author.name)


        def not_fine():
            for b in Book.objects.select_related("author"):
                print(b.author.publisher.name)  # N1
                print([t.name for t in b.tags.all()])  # N1
        ''')
    found = run(root)
    assert {f.line for f in found} == marked(root, "app/code.py")
    by_line = {f.line: f for f in found}
    lines = sorted(by_line)
    assert by_line[lines[0]].context["fix"] == 'select_related("author__publisher")'
    assert by_line[lines[1]].rule == "BA102" and by_line[lines[1]].context["fix"] == 'prefetch_related("tags")'


def test_filter_on_a_prefetched_manager_still_queries_but_values_rows_do_not(tmp_path):
    root = django_project(tmp_path, '''
        from .models import Author, Book


        def run():
            for a in Author.objects.prefetch_related("books"):
                print(a.books.filter(title="x").exists())  # N1
            for row in Book.objects.values("title", "author__name"):
                print(row["author__name"])
            for b in Book.objects.only("title"):
                print(b.summary)  # N1
        ''')
    found = run(root)
    assert {f.line for f in found} == marked(root, "app/code.py")
    assert {f.rule for f in found} == {"BA103", "BA104"}


def test_explicit_queries_writes_and_interprocedural_calls_per_iteration(tmp_path):
    root = django_project(tmp_path, '''
        from .helpers import price_of
        from .models import Author, Tag


        def run(ids, rows):
            for pk in ids:
                Author.objects.get(pk=pk)  # N1
            for row in rows:
                Tag.objects.create(name=row)  # N1
            Tag.objects.bulk_create([Tag(name=r) for r in rows])
            for a in Author.objects.all():
                print(price_of(a))  # N1
            for name in ("a", "b"):
                Tag.objects.get_or_create(name=name)
        ''', {"app/helpers.py": '''
        from .models import Book


        def price_of(author):
            return Book.objects.filter(author=author).count()
        '''})
    found = run(root)
    assert {f.line for f in found} == marked(root, "app/code.py")
    rules = {f.line: f.rule for f in found}
    assert sorted(rules.values()) == ["BA105", "BA106", "BA110"]
    call = next(f for f in found if f.rule == "BA110")
    assert any(r.path == "app/helpers.py" for r in call.related)


def test_template_n_plus_one_is_reported_at_the_view_with_the_template_line_related(tmp_path):
    root = django_project(tmp_path, '''
        from django.shortcuts import render
        from .models import Book


        def slow(request):
            books = Book.objects.all()  # N1
            return render(request, "app/list.html", {"books": books})


        def fast(request):
            books = Book.objects.select_related("author").prefetch_related("tags")
            return render(request, "app/list.html", {"books": books})
        ''', {"app/templates/app/list.html": '''
        {% for b in books %}
          {{ b.title }} {{ b.author.name }}
          {% for t in b.tags.all %}{{ t.name }}{% endfor %}
        {% endfor %}
        '''})
    found = run(root)
    (view_line,) = marked(root, "app/code.py")
    assert [(f.path, f.line, f.rule) for f in found] == [("app/code.py", view_line, "BA111")]
    f = found[0]
    assert {(r.path, r.line) for r in f.related} >= {("app/templates/app/list.html", 2), ("app/templates/app/list.html", 3)}
    assert 'select_related("author")' in f.context["fix"] and 'prefetch_related("tags")' in f.context["fix"]


def test_generic_list_view_default_template_name(tmp_path):
    root = django_project(tmp_path, '''
        from django.views.generic import ListView
        from .models import Book


        class BookList(ListView):
            model = Book  # N1
        ''', {"app/templates/app/book_list.html": '''
        {% for book in object_list %}{{ book.author.name }}{% endfor %}
        '''})
    found = run(root)
    assert {f.line for f in found} == marked(root, "app/code.py")


def test_drf_viewset_reported_at_its_queryset(tmp_path):
    root = django_project(tmp_path, '''
        from rest_framework import serializers, viewsets
        from .models import Book


        class BookSerializer(serializers.ModelSerializer):
            author_name = serializers.CharField(source="author.name")

            class Meta:
                model = Book
                fields = ["id", "title", "author_name", "tags"]


        class Slow(viewsets.ModelViewSet):
            queryset = Book.objects.all()  # N1
            serializer_class = BookSerializer


        class Fast(viewsets.ModelViewSet):
            queryset = Book.objects.select_related("author").prefetch_related("tags")
            serializer_class = BookSerializer
        ''')
    found = run(root)
    assert {f.line for f in found} == marked(root, "app/code.py")
    assert found[0].rule == "BA112"
    assert {r.line for r in found[0].related} == {6, 10}  # the source= field and Meta.fields (tags)


def test_admin_list_display(tmp_path):
    root = django_project(tmp_path, '''
        from django.contrib import admin
        from .models import Author, Book


        @admin.register(Author)
        class AuthorAdmin(admin.ModelAdmin):
            list_display = ("name", "publisher_name")  # N1

            def publisher_name(self, obj):
                return obj.publisher.name


        @admin.register(Book)
        class BookAdmin(admin.ModelAdmin):
            list_display = ("title", "author")
        ''')
    found = run(root)
    assert {f.line for f in found} == marked(root, "app/code.py")
    assert found[0].rule == "BA113" and "publisher" in found[0].context["fix"]


SA_MODELS = '''
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    posts: Mapped[list["Post"]] = relationship(back_populates="user")
    roles: Mapped[list["Role"]] = relationship(lazy="selectin")


class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    user: Mapped["User"] = relationship(back_populates="posts")


class Role(Base):
    __tablename__ = "roles"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
'''


def test_sqlalchemy_lazy_relationships_and_loader_options(tmp_path):
    root = write(tmp_path, {"db/__init__.py": "", "db/models.py": SA_MODELS, "db/code.py": '''
        from sqlalchemy import select
        from sqlalchemy.orm import Session, joinedload, selectinload
        from .models import Post, User


        def run(session: Session, ids):
            for u in session.scalars(select(User)):
                print(len(u.posts), len(u.roles))  # N1
            for u in session.scalars(select(User).options(selectinload(User.posts))):
                print(len(u.posts))
            for p in session.execute(select(Post).options(joinedload(Post.user))).scalars():
                print(p.user.id, p.user_id)
            for p in session.scalars(select(Post)):
                print(p.user_id)
            for i in ids:
                session.get(User, i)  # N1
        '''})
    found = run(root)
    assert {f.line for f in found} == marked(root, "db/code.py")
    lazy = next(f for f in found if f.rule == "BA107")
    assert lazy.context["fix"] == "selectinload(User.posts)"


def test_raw_sql_and_http_per_item(tmp_path):
    root = write(tmp_path, {"job.py": '''
        import sqlite3

        import requests


        def run(rows, statements):
            conn = sqlite3.connect("x.db")
            cur = conn.cursor()
            for r in rows:
                cur.execute("UPDATE t SET v = ? WHERE id = ?", (r[1], r[0]))  # N1
                requests.post("https://example.com/hook", json=r, timeout=3)  # N1
            cur.executemany("UPDATE t SET v = ? WHERE id = ?", rows)
            for sql in statements:
                cur.execute(sql)
            for attempt in range(3):
                try:
                    return requests.get("https://example.com", timeout=3)
                except requests.RequestException:
                    continue
        '''})
    found = run(root)
    assert {f.line for f in found} == marked(root, "job.py")
    assert {f.rule for f in found} == {"BA108", "BA109"}


def test_unused_eager_loading_only_when_every_use_is_visible(tmp_path):
    root = django_project(tmp_path, '''
        from .models import Book


        def unused():
            for b in Book.objects.select_related("author"):  # N1
                print(b.title)


        def returned():
            qs = Book.objects.select_related("author")
            for b in qs:
                print(b.title)
            return qs


        def escapes(out):
            for b in Book.objects.select_related("author"):
                out.append(b)
        ''')
    found = run(root)
    assert [(f.line, f.rule, f.severity) for f in found] == [(5, "BA114", "low")]


def test_odd_code_never_crashes(tmp_path):
    root = django_project(tmp_path, '''
        from .models import Book


        def recursive(n):
            return recursive(n - 1) if n else Book.objects.all()


        def self_ref():
            qs = qs.filter(x=1)
            for b in qs:
                b = b.author
                print(b.name)


        def loop_forever(x):
            for x in x:
                for x in x.author.books.all():
                    x = x
            return [[[y.z for y in x] for x in z] for z in recursive(3)]


        class Weird(Book.objects.all().__class__):
            queryset = lambda self: self
        ''', {"app/templates/broken.html": "{% for %}{{ }}{% endfor %}{% endfor %}{{ a.b.c( }}",
          "app/templates/cycle.html": "{% for a in b %}{% for b in a %}{{ b.x.y }}{% endfor %}{% endfor %}",
          "app/views.py": "from django.shortcuts import render\nfrom .models import Book\n\n"
                          "def v(r):\n    return render(r, 'cycle.html', {'b': Book.objects.all()})\n"})
    run(root)


def test_collect_is_picklable_and_cheap_to_skip():
    analyzer = NPlusOneAnalyzer()
    text = "x = 1\n"
    tree = ast.parse(text)
    unit = FileUnit("python", text, LineIndex(text), load_catalog(), tree, summarize_module(tree, text))
    assert analyzer.collect(unit) is None
    text = textwrap.dedent('''
        def f(qs):
            return [b.author.name for b in qs.select_related("author")]
    ''')
    tree = ast.parse(text)
    unit = FileUnit("python", text, LineIndex(text), load_catalog(), tree, summarize_module(tree, text))
    facts = analyzer.collect(unit)
    assert pickle.loads(pickle.dumps(facts)) == facts
    assert facts["functions"]["f"]["loops"]


def test_template_scan_and_names():
    facts = collect_template('{% for b in books %}\n{{ b.author.name|upper }}\n{% with a=b.editor %}{{ a.name }}'
                             '{% endwith %}\n{% endfor %}\n{% include "row.html" with x=b %}')
    assert facts["loops"] == [(("b",), "books", 1, 4)]
    assert ("b.author.name", 2) in facts["uses"]
    assert ("a", "b.editor", 3) in facts["withs"]
    assert template_name("shop/templates/shop/list.html") == "shop/list.html"
    assert template_name("README.txt") is None


def test_every_rule_is_documented_and_remediation_uses_known_context_keys():
    catalog = load_catalog()
    keys = {"model", "relation", "path", "fix", "call", "callee", "queryset_path", "queryset_line", "template",
            "template_line", "serializer", "field"}
    ids = [r for r in catalog.rules if r.startswith("BA1")]
    assert ids == sorted(ids) and len(ids) >= 14
    for rid in ids:
        doc = catalog.rule(rid)
        assert doc.category == "n-plus-one"
        assert doc.remediation and set(re.findall(r"\{(\w+)\}", doc.remediation)) <= keys, rid


def test_helper_looping_over_a_parameter_is_checked_with_each_callers_queryset(tmp_path):
    root = django_project(tmp_path, '''
        from .helpers import rows
        from .models import Book


        def slow():
            return rows(Book.objects.all())


        def fast():
            return rows(Book.objects.select_related("author"))
        ''', {"app/helpers.py": '''
        def rows(books):
            return [(b.title, b.author.name) for b in books]  # N1
        '''})
    found = run(root)
    assert {(f.path, f.line) for f in found} == {("app/helpers.py", ln) for ln in marked(root, "app/helpers.py")}


def test_context_data_and_paginated_pages_reach_the_template(tmp_path):
    root = django_project(tmp_path, '''
        from django.core.paginator import Paginator
        from django.shortcuts import render
        from django.views.generic import TemplateView
        from .models import Book


        class Home(TemplateView):
            template_name = "home.html"

            def get_context_data(self, **kwargs):
                context = super().get_context_data(**kwargs)
                context["books"] = Book.objects.all()  # N1
                return context


        def paged(request):
            paginator = Paginator(Book.objects.order_by("title"), 20)  # N1
            return render(request, "home.html", {"books": paginator.get_page(1)})
        ''', {"app/templates/home.html": "{% for b in books %}{{ b.author.name }}{% endfor %}\n"})
    found = run(root)
    assert {f.line for f in found} == marked(root, "app/code.py")
    assert {f.rule for f in found} == {"BA111"}


def test_rows_of_a_reverse_manager_know_their_owner_and_tests_are_skipped(tmp_path):
    root = django_project(tmp_path, '''
        from .models import Author


        def run(pk):
            author = Author.objects.get(pk=pk)
            for b in author.books.all():
                print(b.author.name, b.author.publisher_id)
                print([t.name for t in b.tags.all()])  # N1
        ''', {"app/tests/test_views.py": '''
        from app.models import Book


        def test_list():
            for b in Book.objects.all():
                assert b.author.name
        ''', "app/migrations/0002_data.py": '''
        def forwards(apps, schema_editor):
            Book = apps.get_model("app", "Book")
            for b in Book.objects.all():
                b.title = b.title.strip()
                b.save()
        '''})
    found = run(root)
    assert {(f.path, f.line) for f in found} == {("app/code.py", ln) for ln in marked(root, "app/code.py")}


# ----- custom managers and querysets, default managers, CBV context, external user models ---------
MANAGED_MODELS = '''
from django.db import models


class Board(models.Model):
    name = models.CharField(max_length=100)


class Person(models.Model):
    name = models.CharField(max_length=100)


class TaskQuerySet(models.QuerySet):
    def open(self):
        return self.filter(done=False)

    def with_owner(self):
        return self.select_related("owner")


class TaskManager(models.Manager.from_queryset(TaskQuerySet)):
    def urgent(self):
        return self.get_queryset().filter(priority__gte=5)


class ClassicManager(models.Manager):
    def get_queryset(self):
        return TaskQuerySet(self.model, using=self._db).select_related("board")


class Task(models.Model):
    done = models.BooleanField(default=False)
    priority = models.IntegerField(default=0)
    board = models.ForeignKey(Board, on_delete=models.CASCADE)
    owner = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="tasks")

    objects = TaskManager()
    simple = TaskQuerySet.as_manager()
    classic = ClassicManager()
'''


def test_chains_through_custom_manager_and_queryset_methods_keep_the_model(tmp_path):
    root = write(tmp_path, {"app/__init__.py": "", "app/models.py": MANAGED_MODELS, "app/code.py": '''
        from .models import Task


        def run():
            for t in Task.objects.open().filter(board_id=1):
                print(t.owner.name)  # N1
            for t in Task.objects.urgent():
                print(t.board.name)  # N1
            for t in Task.simple.open():
                print(t.owner.name)  # N1
            for t in Task.classic.open():
                print(t.board.name)
                print(t.owner.name)  # N1


        def loaded():
            for t in Task.objects.open().with_owner():
                print(t.owner.name)
            for t in Task.simple.with_owner().open():
                print(t.owner.name)
            for t in Task.objects.urgent().select_related("board"):
                print(t.board.name)


        def unknown():
            for t in Task.objects.open().visible_to(1):  # a method no project class defines: unknown loading
                print(t.owner.name)
        '''})
    found = run(root)
    assert {f.line for f in found} == marked(root, "app/code.py")
    assert all(f.rule == "BA101" for f in found)
    # the queryset is reported where this caller built it (not where a memoised callee first saw it)
    assert sorted(f.context["queryset_line"] for f in found) == [5, 7, 9, 11]


def test_default_manager_get_queryset_loads_relations_for_related_managers_and_prefetches(tmp_path):
    root = write(tmp_path, {"app/__init__.py": "", "app/models.py": '''
        from django.db import models


        class Department(models.Model):
            name = models.CharField(max_length=100)


        class Project(models.Model):
            title = models.CharField(max_length=100)


        class JoinedManager(models.Manager):
            def get_queryset(self):
                return super().get_queryset().select_related("department")


        class Employee(models.Model):
            department = models.ForeignKey(Department, on_delete=models.CASCADE)
            mentor = models.ForeignKey("self", on_delete=models.CASCADE, null=True)
            project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="members")
            objects = JoinedManager()


        class Contractor(models.Model):
            department = models.ForeignKey(Department, on_delete=models.CASCADE)
            project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="contractors")
            plain = models.Manager()  # declared first: the default manager
            objects = JoinedManager()


        class Team(models.Model):
            people = models.ManyToManyField(Employee)
        ''', "app/code.py": '''
        from .models import Employee, Project, Team


        def run():
            for p in Project.objects.prefetch_related("members", "contractors"):
                for m in p.members.all():
                    print(m.department.name)
                    print(m.mentor.department_id)  # N1
                for c in p.contractors.all():
                    print(c.department.name)  # N1
            for team in Team.objects.prefetch_related("people"):
                print([e.department.name for e in team.people.all()])
            for e in Employee.objects.select_related("mentor"):
                print(e.mentor.department.name)  # N1
        '''})
    found = run(root)
    assert {f.line for f in found} == marked(root, "app/code.py")


CBV_MODELS = '''
from django.db import models


class Person(models.Model):
    name = models.CharField(max_length=100)


class Thread(models.Model):
    title = models.CharField(max_length=100)


class Message(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="messages")
    sender = models.ForeignKey(Person, on_delete=models.CASCADE)
'''


def test_get_context_data_and_extra_context_querysets_feed_the_cbv_template(tmp_path):
    root = write(tmp_path, {"forum/__init__.py": "", "forum/models.py": CBV_MODELS, "forum/views.py": '''
        from django.views.generic import DetailView, ListView, TemplateView

        from .models import Message, Thread


        class ThreadDetail(DetailView):
            model = Thread

            def get_context_data(self, **kwargs):
                ctx = super().get_context_data(**kwargs)
                ctx["replies"] = self.object.messages.order_by("id")  # N1
                ctx["loaded"] = self.object.messages.select_related("sender")
                ctx["titles"] = self.object.messages.all()
                return ctx


        class Inbox(TemplateView):
            template_name = "forum/inbox.html"
            extra_context = {"latest": Message.objects.all(), "fast": Message.objects.select_related("sender")}  # N1


        class ThreadList(ListView):
            model = Thread

            def get_context_data(self, **kwargs):
                kwargs["recent"] = Message.objects.all()  # N1
                return super().get_context_data(**kwargs)


        class Untemplated(TemplateView):
            def get_context_data(self, **kwargs):
                return {"latest": Message.objects.all()}
        ''',
        "forum/templates/forum/thread_detail.html":
            "{% for r in replies %}{{ r.sender.name }}{% endfor %}\n"
            "{% for r in loaded %}{{ r.sender.name }} {{ r.thread.title }}{% endfor %}\n"
            "{% for r in titles %}{{ r.id }} {{ r.sender_id }}{% endfor %}\n",
        "forum/templates/forum/inbox.html": "{% for m in latest %}{{ m.sender.name }}{% endfor %}"
                                            "{% for m in fast %}{{ m.sender.name }}{% endfor %}\n",
        "forum/templates/forum/thread_list.html": "{% for m in recent %}{{ m.sender.name }}{% endfor %}\n",
        "forum/templates/forum/untemplated.html": "{% for m in latest %}{{ m.sender.name }}{% endfor %}\n",
    })
    found = run(root)
    assert {(f.path, f.line) for f in found} == {("forum/views.py", n) for n in marked(root, "forum/views.py")}
    assert {f.rule for f in found} == {"BA111"}
    detail = next(f for f in found if f.context["template"].endswith("thread_detail.html"))
    assert detail.context["fix"] == 'select_related("sender")'


USER_POSTS = '''
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models


class Post(models.Model):
    title = models.CharField(max_length=100)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="posts")


class Vote(models.Model):
    voter = models.ForeignKey(get_user_model(), on_delete=models.CASCADE)
    hidden = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="+")
'''


def test_reverse_relations_onto_auth_user_from_project_foreign_keys(tmp_path):
    root = write(tmp_path, {"blog/__init__.py": "", "blog/models.py": USER_POSTS, "blog/code.py": '''
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import User

        UserModel = get_user_model()


        def run():
            for user in User.objects.filter(is_active=True):
                print(user.posts.count())  # N1
            for user in UserModel.objects.all():
                print(user.vote_set.exists())  # N1
            for user in User.objects.prefetch_related("posts", "vote_set"):
                print(user.posts.count(), len(user.vote_set.all()))
            for user in User.objects.all():
                print(user.username, user.groups, user.pk)
        '''})
    found = run(root)
    assert {f.line for f in found} == marked(root, "blog/code.py")
    assert {f.rule for f in found} == {"BA103"}


def test_orm_graph_keeps_external_models_apart_with_their_reverse_accessors():
    from backend_audit.index.orm import OrmIndex
    from backend_audit.index.project import ProjectIndex

    text = textwrap.dedent(USER_POSTS)
    summaries = {"blog/__init__.py": summarize_module(ast.parse(""), ""),
                 "blog/models.py": summarize_module(ast.parse(text), text)}
    orm = OrmIndex(ProjectIndex(summaries), load_catalog())
    # the shared graph (also read by the missing-index analyzer) stays project-only
    assert all(q.startswith("blog.") for q in orm.models)
    post = next(m for m in orm.models.values() if m.name == "Post")
    assert post.fields["author"].target is None
    assert post.fields["author"].external_target == "django.contrib.auth.models.User"
    user = orm.external["django.contrib.auth.models.User"]
    assert set(user.reverse) == {"posts", "vote_set"}  # related_name="+" adds no accessor
    assert user.reverse["posts"].source == post.qualified and orm.user_model is None


def test_settings_auth_user_model_resolves_to_the_project_user_model(tmp_path):
    root = write(tmp_path, {
        "config/__init__.py": "", "config/settings.py": 'AUTH_USER_MODEL = "accounts.User"\n',
        "accounts/__init__.py": "", "accounts/models.py": '''
        from django.contrib.auth.models import AbstractUser
        from django.db import models


        class Team(models.Model):
            name = models.CharField(max_length=100)


        class User(AbstractUser):
            team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True)
        ''',
        "blog/__init__.py": "", "blog/models.py": USER_POSTS, "blog/code.py": '''
        from django.contrib.auth import get_user_model

        from accounts.models import User

        from .models import Post


        def run():
            for user in User.objects.all():
                print(user.posts.count())  # N1
            for user in get_user_model().objects.select_related("team"):
                print(user.team.name, user.vote_set.count())  # N1
            for post in Post.objects.select_related("author"):
                print(post.author.team.name)  # N1
            for post in Post.objects.select_related("author__team"):
                print(post.author.team.name)
        '''})
    found = run(root)
    assert {f.line for f in found} == marked(root, "blog/code.py")
