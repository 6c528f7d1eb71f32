"""The missing-index analyzer (BA2xx): schema from the repo against the repo's own queries."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from backend_audit.analyzers.missing_index import MissingIndexAnalyzer
from backend_audit.analyzers.missing_index.schema import (
    Index,
    Table,
    index_serves,
    serving_index,
)
from backend_audit.analyzers.missing_index.sql import (
    facts_of_statement,
    split_statements,
)
from backend_audit.catalog import load_catalog
from backend_audit.engine import ScanOptions, scan

MODELS = """
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


class Author(models.Model):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=100)
    country = models.CharField(max_length=2)


class Book(models.Model):
    title = models.CharField(max_length=200)
    sku = models.CharField(max_length=20)
    status = models.CharField(max_length=20)
    region = models.CharField(max_length=20)
    code = models.CharField(max_length=20)
    deleted_at = models.DateTimeField(null=True)
    price = models.IntegerField()
    author = models.ForeignKey(Author, related_name="books", on_delete=models.CASCADE)

    class Meta:
        indexes = [
            models.Index(fields=["region", "code"], name="book_region_code"),
            models.Index(fields=["price"], name="book_live_price", condition=Q(deleted_at__isnull=True)),
            models.Index(Lower("title"), name="book_title_lower"),
        ]
"""


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"), "utf-8")


def run(root: Path, options: dict | None = None):
    result = scan(ScanOptions(paths=[str(root)], use_cache=False, jobs=1,
                              analyzer_options=options or {}),
                  load_catalog(), analyzers=[MissingIndexAnalyzer()])
    return [f for f in result.findings if f.category == "missing-index"]


def at(findings, path: str) -> dict[int, str]:
    return {f.line: f.rule for f in findings if f.path == path}


def django_project(tmp_path: Path, views: str) -> Path:
    write(tmp_path, {"shop/__init__.py": "", "shop/models.py": MODELS, "shop/views.py": views})
    return tmp_path


# ----- what serves what ------------------------------------------------------------------------
def test_composite_index_serves_its_leading_column_only():
    ix = Index("t", ("a", "b"))
    assert index_serves(ix, "a", "eq", set(), {"a"})
    assert index_serves(ix, "b", "eq", {"a"}, {"a", "b"})
    assert not index_serves(ix, "b", "eq", set(), {"b"})
    assert not index_serves(ix, "b", "order", set(), {"b"})


def test_partial_expression_and_trigram_indexes_serve_only_matching_queries():
    partial = Index("t", ("price",), condition_columns=frozenset({"deleted_at"}))
    assert index_serves(partial, "price", "range", set(), {"price", "deleted_at"})
    assert not index_serves(partial, "price", "range", set(), {"price"})
    expr = Index("t", ("lower(email)",))
    assert index_serves(expr, "lower(email)", "eq", set(), {"email"})
    assert not index_serves(expr, "email", "eq", set(), {"email"})
    btree = Index("t", ("title",))
    trgm = Index("t", ("title",), method="gin", trigram=True)
    assert not index_serves(btree, "title", "infix", set(), {"title"})
    assert index_serves(trgm, "title", "infix", set(), {"title"})
    t = Table("t", indexes=[btree])
    assert serving_index(t, "title", "prefix", set(), {"title"}) is btree


# ----- sqlglot facts ----------------------------------------------------------------------------
def test_sql_query_columns_resolve_through_aliases_and_functions():
    sql = ("SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id "
           "WHERE lower(c.email) = %s AND o.status IN (%s, %s) AND o.note LIKE '%%x%%' ORDER BY o.created_at")
    [fact] = facts_of_statement(sql, lambda *a: 0, 7)
    got = {(u["tables"][0], u["column"], u["usage"]) for u in fact["usages"]}
    assert ("customers", "email", "func:lower") in got
    assert ("orders", "status", "eq") in got
    assert ("orders", "note", "infix") in got
    assert ("orders", "created_at", "order") in got
    assert ("orders", "customer_id", "join") in got


def test_sql_ddl_facts_and_statement_lines():
    text = "-- schema\nCREATE TABLE a (\n  id int PRIMARY KEY,\n  b_id int REFERENCES b (id)\n);\n\nCREATE INDEX CONCURRENTLY ix ON a USING gin (name gin_trgm_ops) WHERE deleted IS NULL;\n"
    stmts = split_statements(text)
    assert [text.count("\n", 0, off) + 1 for off, _ in stmts] == [2, 7]
    [table] = facts_of_statement(stmts[0][1], lambda *a: 0, 2)
    assert table["pk"] == ["id"] and table["fks"][0]["columns"] == ["b_id"] and table["fks"][0]["ref_table"] == "b"
    [index] = facts_of_statement(stmts[1][1], lambda *a: 0, 7)
    assert index["trigram"] and index["method"] == "gin" and index["where_cols"] == ["deleted"]


def test_unparseable_sql_gives_no_facts():
    assert facts_of_statement("SELECT FROM WHERE ((", lambda *a: 0, 1) == []


# ----- Django end to end ------------------------------------------------------------------------
def test_queries_in_another_module_are_checked_against_the_models(tmp_path):
    root = django_project(tmp_path, """
        from .models import Author, Book

        def a(sku):
            return Book.objects.get(sku=sku)

        def b(email):
            return Book.objects.filter(author__email=email)

        def c(country):
            return Book.objects.filter(author__country=country)

        def d(author):
            return Book.objects.filter(author=author)

        def e(code):
            return Book.objects.filter(code=code)

        def f(region):
            return Book.objects.filter(region=region, code="x")

        def g():
            return Book.objects.filter(deleted_at__isnull=True, price__lt=3)

        def h():
            return Book.objects.filter(price__lt=3)

        def i(q):
            return Author.objects.filter(name__icontains=q)

        def j(t):
            return Book.objects.filter(title__iexact=t)

        def k(e):
            return Author.objects.get(email__iexact=e)
    """)
    got = at(run(root), "shop/views.py")
    assert got == {4: "BA201", 10: "BA201", 16: "BA207", 25: "BA201", 28: "BA205", 34: "BA206"}


def test_several_sites_of_one_missing_index_are_one_finding(tmp_path):
    root = django_project(tmp_path, """
        from .models import Book

        def a(s):
            return Book.objects.filter(status=s)

        def b(s):
            qs = Book.objects.all()
            qs = qs.filter(status=s).order_by("price")
            return qs
    """)
    write(tmp_path, {"shop/reports.py": """
        from django.db import connection

        def r(s):
            with connection.cursor() as cur:
                cur.execute("SELECT id FROM shop_book WHERE status = %s", [s])
    """})
    findings = [f for f in run(root) if f.rule == "BA201"]
    assert len(findings) == 1
    f = findings[0]
    assert (f.path, f.line) == ("shop/reports.py", 5)
    sites = {(r.path, r.line) for r in f.related}
    assert {("shop/views.py", 4), ("shop/views.py", 8), ("shop/models.py", 15)} <= sites
    assert f.context["table"] == "shop_book" and f.context["columns"] == ["status"]
    assert "db_index=True" in f.context["index_change"]
    assert "AddIndexConcurrently" in f.context["migration"]
    assert len(f.context["sites"]) == 3


def test_get_or_create_without_unique_constraint(tmp_path):
    root = django_project(tmp_path, """
        from .models import Author, Book

        def a(n):
            return Author.objects.get_or_create(name=n, defaults={"country": "x"})

        def b(e):
            return Author.objects.get_or_create(email=e)

        def c(n, e):
            if not Author.objects.filter(country=n).exists():
                Author.objects.create(country=n, email=e)
    """)
    assert at(run(root), "shop/views.py") == {4: "BA204", 10: "BA204"}


def test_index_added_by_a_later_migration_or_runsql_counts(tmp_path):
    root = django_project(tmp_path, """
        from .models import Book

        def a(s):
            return Book.objects.filter(status=s)

        def b(s):
            return Book.objects.filter(sku=s)
    """)
    write(tmp_path, {"shop/migrations/__init__.py": "", "shop/migrations/0002_idx.py": """
        from django.db import migrations, models

        class Migration(migrations.Migration):
            operations = [
                migrations.AddIndex(model_name="book", index=models.Index(fields=["status"], name="b_status")),
                migrations.RunSQL("CREATE INDEX b_sku ON shop_book (sku)", reverse_sql="DROP INDEX b_sku"),
            ]
    """})
    assert at(run(root), "shop/views.py") == {}


def test_models_the_repo_does_not_define_produce_nothing(tmp_path):
    root = django_project(tmp_path, """
        from django.contrib.auth.models import User
        from django.db import connection

        def a(e):
            return User.objects.filter(email=e)

        def b(e):
            connection.cursor().execute("SELECT * FROM auth_user WHERE email = %s", [e])
            connection.cursor().execute("SELECT * FROM somewhere_else WHERE x = %s", [e])
    """)
    assert at(run(root), "shop/views.py") == {}


def test_meta_ordering_is_reported_at_the_meta_line(tmp_path):
    models = MODELS + '''

class Review(models.Model):
    created = models.DateTimeField()

    class Meta:
        ordering = ["-created"]
'''
    write(tmp_path, {"shop/__init__.py": "", "shop/models.py": models, "shop/views.py": """
        from .models import Review

        def latest():
            return list(Review.objects.all()[:10])

        def count():
            return Review.objects.count()
    """})
    findings = run(tmp_path)
    [f] = [f for f in findings if f.rule == "BA202"]
    assert f.path == "shop/models.py" and "ordering" in (tmp_path / "shop/models.py").read_text().splitlines()[f.line - 1]
    assert ("shop/views.py", 4) in {(r.path, r.line) for r in f.related}


# ----- SQLAlchemy, Alembic, DDL, dialects ------------------------------------------------------
SA_MODELS = """
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    name: Mapped[str] = mapped_column(String(50))
    email: Mapped[str] = mapped_column(String(50), index=True)
    __table_args__ = (Index("ix_users_email_dup", "email"),)
"""


def test_sqlalchemy_fk_without_index_is_dialect_aware(tmp_path):
    write(tmp_path, {"app/__init__.py": "", "app/models.py": SA_MODELS, "app/q.py": """
        from sqlalchemy import select
        from .models import User

        def by_name(n):
            return select(User).where(User.name == n)
    """})
    pg = run(tmp_path)
    assert {(f.path, f.line, f.rule) for f in pg} == {
        ("app/models.py", 12, "BA203"), ("app/models.py", 15, "BA208"), ("app/q.py", 5, "BA201")}
    mysql = run(tmp_path, {"missing-index": {"dialect": "mysql"}})
    assert "BA203" not in {f.rule for f in mysql}


def test_alembic_index_and_sql_file_schema(tmp_path):
    write(tmp_path, {"app/__init__.py": "", "app/models.py": SA_MODELS,
                     "migrations/versions/r1.py": """
        from alembic import op

        revision = "r1"
        down_revision = None

        def upgrade():
            op.create_index("ix_users_org", "users", ["org_id"])

        def downgrade():
            op.drop_index("ix_users_org", table_name="users")
    """, "db/extra.sql": """
        CREATE TABLE events (
            id bigserial PRIMARY KEY,
            user_id int REFERENCES users (id),
            kind text
        );
        SELECT id FROM events WHERE kind = 'login';
    """})
    got = {(f.path, f.line, f.rule) for f in run(tmp_path)}
    assert ("app/models.py", 12, "BA203") not in got
    assert ("db/extra.sql", 3, "BA203") in got
    assert ("db/extra.sql", 6, "BA201") in got


def test_finding_remediation_fills_every_placeholder(tmp_path):
    root = django_project(tmp_path, """
        from .models import Book

        def a(s):
            return Book.objects.filter(status=s)
    """)
    [f] = run(root)
    doc = load_catalog().rule(f.rule)
    text = doc.remediation.format(**f.context)
    assert "shop_book" in text and "{" not in text.replace("{}", "")


# ----- robustness and cost ----------------------------------------------------------------------
def test_odd_input_never_raises(tmp_path):
    write(tmp_path, {"a.py": """
        from django.db import models
        class M(models.Model):
            x = models.CharField(max_length=2)
            class Meta:
                indexes = [models.Index(fields=[f"{x}"]), "nonsense", models.Index()]
                ordering = 3
                unique_together = 5
        M.objects.filter(**{"x": 1}).order_by(*[])
        M.objects.get_or_create()
        cur.execute("SELECT FROM WHERE")
        cur.execute(f"SELECT * FROM {table} WHERE x = 1")
    """, "b.sql": "CREATE TABLE ((( ;; SELECT ;", "c.sql": ""})
    run(tmp_path)


def test_files_without_sql_or_queries_collect_nothing_and_never_import_sqlglot():
    code = textwrap.dedent("""
        import ast, sys
        from backend_audit.analyzers.missing_index import MissingIndexAnalyzer
        from backend_audit.analyzers.base import FileUnit
        from backend_audit.catalog import load_catalog
        from backend_audit.parsing.summary import LineIndex, summarize_module
        text = "import os\\n\\ndef f(x):\\n    return os.path.join(x, 'a')\\n"
        tree = ast.parse(text)
        unit = FileUnit("python", text, LineIndex(text), load_catalog(), tree, summarize_module(tree, text))
        assert MissingIndexAnalyzer().collect(unit) is None
        assert "sqlglot" not in sys.modules, "sqlglot imported for a file without SQL"
    """)
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("project", ["mi_django_shop", "mi_sqlalchemy_app", "mi_flask_mysql"])
def test_fixture_projects_have_no_false_positives(project):
    from fixture_scoring import FIXTURES, score_all

    s = score_all([FIXTURES / project])["missing-index"]
    assert s.fp == 0 and s.fn == 0, (s.false_positives, s.false_negatives)


def test_proxy_unmanaged_models_and_test_files(tmp_path):
    models = MODELS + '''

class CheapBook(Book):
    class Meta:
        proxy = True


class LegacyRow(models.Model):
    code = models.CharField(max_length=5)

    class Meta:
        managed = False
        db_table = "legacy_rows"
'''
    write(tmp_path, {"shop/__init__.py": "", "shop/models.py": models, "shop/views.py": """
        from .models import CheapBook, LegacyRow

        def a(r):
            return CheapBook.objects.filter(region=r)

        def b(c):
            return LegacyRow.objects.filter(code=c)

        def c(s):
            return CheapBook.objects.filter(sku=s)
    """, "shop/tests/test_views.py": """
        from shop.models import Book

        def test_status():
            assert not Book.objects.filter(status="x").exists()
    """})
    got = {(f.path, f.line, f.rule) for f in run(tmp_path)}
    assert got == {("shop/views.py", 10, "BA201")}


def test_sqlalchemy_exists_then_create_and_mysql_fk_indexes(tmp_path):
    write(tmp_path, {"app/__init__.py": "", "app/models.py": SA_MODELS, "app/q.py": """
        from .models import User

        def ensure(session, name):
            user = session.query(User).filter_by(name=name).first()
            if user is None:
                session.add(User(name=name))
            return user

        def by_org(session, org_id):
            return session.query(User).filter(User.org_id == org_id).all()
    """})
    pg = {(f.path, f.line, f.rule) for f in run(tmp_path)}
    assert ("app/q.py", 4, "BA204") in pg and ("app/q.py", 10, "BA201") in pg
    mysql = {(f.path, f.line, f.rule) for f in run(tmp_path, {"missing-index": {"dialect": "mysql"}})}
    assert ("app/q.py", 10, "BA201") not in mysql  # InnoDB indexed the foreign key


def test_dialect_is_guessed_from_settings(tmp_path):
    write(tmp_path, {"app/__init__.py": "", "app/models.py": SA_MODELS,
                     "settings.py": 'DATABASES = {"default": {"ENGINE": "django.db.backends.mysql"}}\n'})
    assert "BA203" not in {f.rule for f in run(tmp_path)}
    (tmp_path / "settings.py").write_text('DATABASE_URL = "postgresql+psycopg://u@h/db"\n')
    assert "BA203" in {f.rule for f in run(tmp_path)}


def test_negatives_that_look_like_filters(tmp_path):
    models = MODELS + '''

class Doc(models.Model):
    data = models.JSONField()
    flag = models.BooleanField(default=False)
    label = models.CharField(max_length=10)
    score = models.IntegerField()
'''
    write(tmp_path, {"shop/__init__.py": "", "shop/models.py": models, "shop/views.py": """
        from django.db.models import Count
        from .models import Doc

        def a(v):
            return Doc.objects.filter(data=v)

        def b():
            return Doc.objects.get_or_create(flag=True)

        def c():
            return Doc.objects.filter(label=None)

        def d():
            return Doc.objects.values("score").annotate(n=Count("id")).order_by("score")

        def e():
            return Doc.objects.filter(data__contains={"a": 1})

        def f():
            return Doc.objects.exclude(label="x")

        def g(s):
            return Doc.objects.filter(score__date=s)
    """})
    assert at(run(tmp_path), "shop/views.py") == {}


def test_every_rule_is_documented_and_its_remediation_uses_known_keys():
    catalog = load_catalog()
    keys = {"table", "columns", "model", "field", "index_change", "migration", "dialect", "sites", "lookup",
            "index_name"}
    ids = [f"BA20{i}" for i in range(1, 9)]
    for rid in ids:
        doc = catalog.rule(rid)
        assert doc.category == "missing-index" and doc.remediation and doc.tradeoffs and doc.references
        doc.remediation.format(**{k: "x" for k in keys})
    data = catalog.section("missing_index")
    assert data["django_lookups"]["icontains"] == "infix" and "auth_user" in data["third_party_tables"]


def test_querysets_continued_from_elsewhere_and_unknown_fields_are_not_guessed(tmp_path):
    models = MODELS + '''

from phonenumber_field.modelfields import PhoneNumberField


class Contact(models.Model):
    status = models.CharField(max_length=10)
    phone = PhoneNumberField()

    class Meta:
        indexes = [models.Index(fields=["status", "phone"], name="contact_status_phone")]
'''
    write(tmp_path, {"shop/__init__.py": "", "shop/models.py": models, "shop/views.py": """
        from .models import Book, Contact

        def base(author):
            return Book.objects.filter(author=author)

        def narrowed(author, sku):
            return base(author).filter(sku=sku)

        def by_status(s):
            return Contact.objects.filter(status=s)

        def by_phone(p):
            return Contact.objects.filter(phone=p)
    """})
    assert at(run(tmp_path), "shop/views.py") == {}
