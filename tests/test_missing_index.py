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


@pytest.mark.parametrize("project", ["mi_django_shop", "mi_sqlalchemy_app", "mi_flask_mysql", "mi_core_app",
                                     "mi_django_hr"])
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


# ----- raw SQL: where findings are reported, SQL built from pieces, bound LIKE patterns ---------------
CORE_TABLES = """
from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, MetaData, String, Table, func

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(200), unique=True),
    Column("name", String(100)),
    Column("nick", String(100)),
    Column("city", String(100)),
    Column("joined", DateTime),
    Column("seen", DateTime),
    Column("deleted_at", DateTime),
)
Index("ix_users_lower_nick", func.lower(users.c.nick))
Index("ix_users_seen_day", func.date(users.c.seen))

devices = Table(
    "devices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id"), index=True),
    Column("platform", String(20)),
)
"""


def test_raw_sql_findings_are_reported_at_the_call_that_runs_the_sql(tmp_path):
    write(tmp_path, {"app/__init__.py": "", "app/tables.py": CORE_TABLES, "app/raw.py": '''
        def multi_line(cur, name):
            cur.execute(
                """
                SELECT id
                FROM users
                WHERE name = %s
                """,
                (name,),
            )

        def built_first(cur, city):
            sql = "SELECT id FROM users WHERE city = %s"
            rows = cur.execute(sql, (city,))
            return rows

        def wrapped(session, text, platform):
            return session.execute(
                text("""
                    SELECT id FROM devices
                    WHERE platform = :p
                """),
                {"p": platform},
            )

        UNUSED = """
            SELECT id FROM users WHERE joined > now()
        """
    '''})
    assert at(run(tmp_path), "app/raw.py") == {
        2: "BA201",  # the `cur.execute(` line, not the WHERE line inside the string
        13: "BA201",  # the execute that takes `sql`, not the assignment
        17: "BA201",  # `session.execute(` around a multi-line `text(...)`
        25: "BA201",  # a string never passed to a call we can see: its first line
    }
    # in a .sql file the finding stays at the column's line
    write(tmp_path, {"app/raw.py": "", "db/report.sql":
                     "SELECT id\nFROM devices\nWHERE devices.user_id IS NULL\n  AND devices.platform = 'x';\n"})
    assert at(run(tmp_path), "db/report.sql") == {4: "BA201"}


def test_sql_built_by_concatenation_keeps_its_shape_and_bound_patterns_are_read(tmp_path):
    write(tmp_path, {"app/__init__.py": "", "app/tables.py": CORE_TABLES, "app/search.py": '''
        def by_name(cur, term, sort):
            sql = "SELECT id FROM users WHERE name ILIKE %s ORDER BY " + sort
            cur.execute(sql, ("%" + term + "%",))

        def by_city(cur, term):
            pattern = f"%{term}%"
            cur.execute(f"SELECT id FROM users WHERE city LIKE %s LIMIT {10}", [pattern])

        def by_joined(cur, term):
            cur.execute("SELECT id FROM users WHERE name LIKE %(q)s AND id > 0", {"q": "%%%s%%" % term})

        def city_prefix(cur, term):
            cur.execute("SELECT id FROM users WHERE city LIKE %s", (term + "%",))

        def nick_ci(cur, nick):
            cur.execute("SELECT id FROM users WHERE nick ILIKE %s", (nick,))

        def email_ci(cur, email):
            cur.execute("SELECT id FROM users WHERE email ILIKE %s", (email,))

        def platform_ci(cur, value):
            cur.execute("SELECT id FROM devices WHERE platform ILIKE %s", (value,))
    '''})
    got = at(run(tmp_path), "app/search.py")
    assert got.get(3) == "BA205"  # the concatenated SQL, the parameter built with a leading %
    assert got.get(7) == "BA205"  # an f-string SQL, the pattern in a variable
    assert got.get(13) is None  # a prefix pattern: a B-tree can serve it (LIKE, not ILIKE)
    assert got.get(16) is None  # ILIKE with a lower() expression index
    assert got.get(19) == "BA206"  # ILIKE on a plain unique index: the B-tree cannot serve it
    assert got.get(22) == "BA206"
    assert 10 not in got  # `name` LIKE: the same missing trigram index as line 3, one finding
    f = next(x for x in run(tmp_path) if x.path == "app/search.py" and x.line == 3)
    assert any(r.line == 10 for r in f.related)


def test_sqlalchemy_core_tables_in_another_module(tmp_path):
    write(tmp_path, {"app/__init__.py": "", "app/tables.py": CORE_TABLES, "app/q.py": """
        import sqlalchemy as sa
        from sqlalchemy import cast, Date, extract, func, select, update

        from .tables import devices, users

        def mine(conn, uid):
            return conn.execute(select(devices).where(devices.c.user_id == uid)).all()

        def on(conn, platform):
            return conn.execute(select(devices).where(devices.c.platform == platform)).all()

        def by_email(conn, email):
            return conn.execute(sa.select(users.c.id).where(users.c["email"] == email)).first()

        def by_city(conn, city):
            return conn.execute(users.select().where(users.c["city"] == city)).all()

        def rename(conn, old, new):
            conn.execute(update(users).where(users.c.name == old).values(name=new))

        def deleted(conn):
            return conn.execute(select(users).where(users.c.deleted_at.is_(None))).all()

        def joined_in(conn, year):
            return conn.execute(select(users).where(extract("year", users.c.joined) == year)).all()

        def seen_on(conn, day):
            return conn.execute(select(users).where(func.date(users.c.seen) == day)).all()

        def nick_ci(conn, nick):
            return conn.execute(select(users).where(func.lower(users.c.nick) == nick.lower())).all()

        def city_ci(conn, city):
            return conn.execute(select(users).where(func.upper(users.c.city) == city)).all()

        def seen_cast(conn, day):
            return conn.execute(select(users).where(day == cast(users.c.joined, Date))).all()

        def busy(conn, n):
            return conn.execute(select(devices.c.user_id).where(devices.c.user_id == 1)
                                .group_by(devices.c.user_id).having(func.count(devices.c.id) > n)).all()
    """})
    got = at(run(tmp_path), "app/q.py")
    assert got.get(7) is None  # devices.c.user_id has index=True in another module
    assert got.get(10) == "BA201"
    assert got.get(13) is None  # unique column through `c["email"]`
    assert got.get(16) == "BA201"  # `t.select().where(...)` with `c["city"]`
    assert got.get(19) == "BA201"  # `update(t).where(...)`
    assert got.get(22) is None  # IS NULL alone
    assert got.get(25) == "BA206"  # extract("year", col)
    assert got.get(28) is None  # expression index on date(seen)
    assert got.get(31) is None  # expression index on lower(nick)
    assert got.get(34) == "BA206"
    assert got.get(37) == "BA206"  # cast(...) on the right-hand side
    assert got.get(40) is None and got.get(41) is None  # HAVING count(...): an aggregate, not a row filter


def test_django_custom_queryset_and_manager_methods_are_query_sites(tmp_path):
    write(tmp_path, {"hr/__init__.py": "", "hr/qs.py": """
        from django.db import models

        class TaskQuerySet(models.QuerySet):
            def due_before(self, day):
                return self.filter(due__lt=day)

        class SharedQuerySet(models.QuerySet):
            def titled(self, title):
                return self.filter(title=title)

        class LooseQuerySet(models.QuerySet):
            def tagged(self, tag):
                return self.filter(tag=tag)
    """, "hr/models.py": """
        from django.db import models
        from .qs import SharedQuerySet, TaskQuerySet

        class Department(models.Model):
            code = models.CharField(max_length=10)
            name = models.CharField(max_length=10, unique=True)

        class EmployeeQuerySet(models.QuerySet):
            def in_department(self, code):
                return self.filter(department__code=code)

            def named_department(self, name):
                return self.filter(department__name=name)

        class EmployeeManager(models.Manager):
            def get_queryset(self):
                return EmployeeQuerySet(self.model, using=self._db)

            def by_email(self, email):
                return self.get_queryset().filter(email=email)

        class Employee(models.Model):
            department = models.ForeignKey(Department, on_delete=models.CASCADE)
            email = models.EmailField()
            objects = EmployeeManager()

        class Project(models.Model):
            title = models.CharField(max_length=10)
            objects = SharedQuerySet.as_manager()

        class Memo(models.Model):
            title = models.CharField(max_length=10)
            objects = SharedQuerySet.as_manager()

        class Task(models.Model):
            due = models.DateField()
            objects = models.Manager.from_queryset(TaskQuerySet)()
    """, "hr/views.py": """
        from .models import Employee

        def staff(code):
            return list(Employee.objects.in_department(code))
    """})
    found = run(tmp_path)
    models = at(found, "hr/models.py")
    assert models.get(10) == "BA201"  # department__code resolves to Department.code (no index)
    assert models.get(13) is None  # Department.name is unique
    assert models.get(20) == "BA201"  # a Manager method through get_queryset()
    assert at(found, "hr/qs.py") == {5: "BA201"}  # from_queryset; a QuerySet shared by two models or none: silent
    assert at(found, "hr/views.py") == {}  # the caller of the custom method is not a second site


def test_expression_indexes_in_sql_ddl_serve_the_same_function_only(tmp_path):
    write(tmp_path, {"app/__init__.py": "", "sql/schema.sql": """
        CREATE TABLE posts (id serial PRIMARY KEY, created_at timestamp NOT NULL, published_at timestamp, email text);
        CREATE INDEX posts_created_day ON posts ((date(created_at)));
        CREATE INDEX posts_pub_year ON posts ((extract(year from published_at)));
        CREATE INDEX posts_email_lower ON posts (lower(email));
    """, "app/q.py": """
        from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, extract, func, select

        posts = Table("posts", MetaData(), Column("id", Integer, primary_key=True), Column("created_at", DateTime),
                      Column("published_at", DateTime), Column("email", String(100)))

        def a(conn, d):
            return conn.execute(select(posts).where(func.date(posts.c.created_at) == d)).all()

        def b(conn, y):
            return conn.execute(select(posts).where(extract("year", posts.c.published_at) == y)).all()

        def c(conn, e):
            return conn.execute(select(posts).where(func.upper(posts.c.email) == e)).all()

        def d(cur, x):
            cur.execute("SELECT id FROM posts WHERE email ILIKE %s", (x,))

        def e(cur, x):
            cur.execute("SELECT id FROM posts WHERE date_trunc('day', created_at) = %s", (x,))
    """})
    # upper() is not the indexed lower(); date_trunc() is not date(): both need their own expression index
    assert at(run(tmp_path), "app/q.py") == {13: "BA206", 19: "BA206"}


def test_sql_below_an_import_of_select_and_asyncpg_parameters(tmp_path):
    write(tmp_path, {"app/__init__.py": "", "app/tables.py": CORE_TABLES, "app/a.py": """
        from sqlalchemy import func, select
        from .tables import users

        async def by_name(conn, q):
            return await conn.fetch("SELECT id FROM users WHERE name ILIKE $1 LIMIT $2", f"%{q}%", 10)

        async def by_city(conn, q):
            return await conn.fetch("SELECT id FROM users WHERE city LIKE $1", q + "%")

        def by_nicks(conn, nicks):
            return conn.execute(select(users).where(func.lower(users.c.nick).in_(nicks))).all()

        def by_names(conn, names):
            return conn.execute(select(users).where(func.upper(users.c.name).in_(names))).all()
    """})
    got = at(run(tmp_path), "app/a.py")
    # `from ... import select` on line 1 does not hide the SQL; `$1` bound to a leading-wildcard pattern
    assert got.get(5) == "BA205"
    assert got.get(8) is None  # a prefix pattern, and city is not otherwise flagged here
    assert got.get(11) is None  # lower(nick) has an expression index
    assert got.get(14) == "BA206"


def test_sql_wrapped_in_text_and_assigned_is_reported_at_the_text_call(tmp_path):
    write(tmp_path, {"app/__init__.py": "", "app/tables.py": CORE_TABLES, "app/t.py": '''
        from sqlalchemy import text

        def by_city(session, city):
            stmt = text("""
                SELECT id FROM users WHERE city = :c
            """)
            return session.execute(stmt, {"c": city}).all()

        def by_name(session, q):
            stmt = text("SELECT id FROM users WHERE name LIKE :q")
            return session.execute(stmt, {"q": "%" + q + "%"}).all()
    '''})
    # the string is passed to `text(`: that line; the bound pattern comes from the execute that runs `stmt`
    assert at(run(tmp_path), "app/t.py") == {4: "BA201", 10: "BA205"}


def test_an_unindexed_foreign_key_that_a_query_filters_on_is_one_finding_at_the_query(tmp_path):
    write(tmp_path, {
        "app/__init__.py": "",
        "app/models.py": """
            from sqlalchemy import ForeignKey
            from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

            class Base(DeclarativeBase):
                pass

            class Customer(Base):
                __tablename__ = "customers"
                id: Mapped[int] = mapped_column(primary_key=True)

            class Order(Base):
                __tablename__ = "orders"
                id: Mapped[int] = mapped_column(primary_key=True)
                customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
                coupon_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
        """,
        "app/queries.py": """
            from sqlalchemy import select
            from .models import Order

            def orders_of(session, customer_id):
                return session.scalars(select(Order).where(Order.customer_id == customer_id)).all()
        """,
    })
    findings = run(tmp_path)
    assert at(findings, "app/queries.py") == {5: "BA201"}
    # the queried FK is not reported again at its definition; the one nobody queries still is
    assert at(findings, "app/models.py") == {15: "BA203"}
    query = next(f for f in findings if f.path == "app/queries.py")
    assert ("app/models.py", 14) in {(r.path, r.line) for r in query.related}
