"""The offline advisor, grouping, redaction and rendering (no network, no SDK)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from advisor_support import (
    PLANTED,
    blocking_finding,
    index_finding,
    make_catalog,
    n1_finding,
    scan_result,
    secret_finding,
)

from backend_audit.advisor import AdvisorOptions, build_report
from backend_audit.advisor.grouping import group_findings, short_ids
from backend_audit.advisor.offline import fill
from backend_audit.advisor.redact import MASK, redact, redact_obj
from backend_audit.advisor.render import report_markdown

ITEM_KEYS = {"id", "priority", "findings", "rules", "category", "title", "locations", "impact", "fix", "tradeoffs",
             "alternatives", "tests", "rollout", "monitoring", "effort", "source"}


@pytest.fixture()
def catalog(tmp_path):
    return make_catalog(tmp_path)


def offline(tmp_path, catalog, findings, monkeypatch=None):
    return build_report(scan_result(tmp_path, findings), catalog, AdvisorOptions(use_llm=False))


# --- grouping ------------------------------------------------------------------------------------
def test_one_missing_index_with_five_query_sites_is_one_item(tmp_path, catalog):
    findings = [index_finding(line) for line in (10, 20, 30, 40, 50)] + [n1_finding()]
    report = offline(tmp_path, catalog, findings)
    assert len(report["items"]) == 2
    index_item = next(i for i in report["items"] if i["rules"] == ["BA201"])
    assert len(index_item["findings"]) == 5
    assert "Book.isbn" in index_item["title"] and "5 sites" in index_item["title"]
    assert [loc["line"] for loc in index_item["locations"]] == [10, 20, 30, 40, 50]


def test_different_targets_are_different_groups():
    a, b = index_finding(10), index_finding(20)
    b.context = {"model": "Book", "field": "title"}
    groups = group_findings([a, b])
    assert len(groups) == 2


def test_a_sync_helper_reached_from_several_coroutines_is_one_root_cause():
    a, b = blocking_finding(12), blocking_finding(30, path="app/other.py")
    for f in (a, b):
        f.rule = "BA402"
        f.context = {"call": "requests.get", "chain": ["app.clients.load_rates", "requests.get"]}
    direct = blocking_finding(40)
    direct.context = {"call": "requests.get", "chain": []}
    direct.related = []
    groups = group_findings([a, b, direct])
    assert sorted(len(g.findings) for g in groups) == [1, 2]
    shared = next(g for g in groups if len(g.findings) == 2)
    assert shared.target == "requests.get in app.clients.load_rates"


def test_short_ids_are_stable_and_follow_sorted_order():
    findings = [n1_finding(), index_finding(20), index_finding(10)]
    ids = short_ids(findings)
    # sorted by path then line: app/reports.py:30, app/views.py:10, app/views.py:20
    assert [ids[id(f)] for f in findings] == ["F1", "F3", "F2"]


def test_priority_from_severity_confidence_and_context(tmp_path, catalog):
    hot = index_finding(10)  # high + request path -> P0
    script = index_finding(5, path="scripts/backfill.py")
    script.context = {"model": "AuditLog", "field": "created"}
    script.related = []
    low_conf = n1_finding()
    low_conf.confidence = "low"
    report = offline(tmp_path, catalog, [hot, script, low_conf])
    by_rule_path = {(i["rules"][0], i["locations"][0]["path"]): i["priority"] for i in report["items"]}
    assert by_rule_path[("BA201", "app/views.py")] == "P0"
    assert by_rule_path[("BA201", "scripts/backfill.py")] == "P2"  # high, lowered one step for a script
    assert by_rule_path[("BA101", "app/reports.py")] == "P3"  # medium, low confidence
    assert [i["priority"] for i in report["items"]] == sorted(i["priority"] for i in report["items"])


# --- the offline report --------------------------------------------------------------------------
def test_offline_report_structure_and_filled_remediation(tmp_path, catalog):
    report = offline(tmp_path, catalog, [index_finding(10), n1_finding(), blocking_finding()])
    assert report["source"] == "offline" and report["model"] is None
    assert report["summary"].startswith("The scan proved 3 problems")
    assert {i["source"] for i in report["items"]} == {"offline"}
    for item in report["items"]:
        assert ITEM_KEYS <= set(item)
        assert item["priority"] in ("P0", "P1", "P2", "P3") and item["effort"] in ("S", "M", "L")
    texts = {i["rules"][0]: i for i in report["items"]}
    assert "`Book.isbn`" in texts["BA201"]["fix"] and "db_index=True" in texts["BA201"]["fix"]
    assert "```python" in texts["BA201"]["fix"]  # the rule's good example as code
    assert '.select_related("author")' in texts["BA101"]["fix"] and "`export_books`" in texts["BA101"]["fix"]
    assert "Replace `requests.get` with `httpx.AsyncClient.get` (reached through fetch -> load_rates)" in texts["BA401"]["fix"]
    assert texts["BA401"]["effort"] == "M"  # a transitive chain is more work
    assert "CONCURRENTLY" in texts["BA201"]["rollout"]
    assert "assertNumQueries" in texts["BA101"]["tests"]
    assert report["findings"]["F1"]["fingerprint"] == "blk12"  # app/api.py sorts first
    json.dumps(report)  # JSON-ready


def test_missing_placeholder_degrades_to_a_phrase(tmp_path, catalog):
    f = blocking_finding()
    f.context = {"call": "time.sleep"}  # no alternative, no chain
    report = offline(tmp_path, catalog, [f])
    fix = report["items"][0]["fix"]
    assert "Replace `time.sleep` with `an async-native equivalent` (reached through the call chain)" in fix
    assert fill("{unknown_key} and {{literal}}", {}) == "the unknown key and {literal}"
    assert fill("{chain}", {"chain": ["a", "b"]}) == "a -> b"


def test_no_findings_gives_an_empty_plan(tmp_path, catalog):
    report = offline(tmp_path, catalog, [])
    assert report["items"] == [] and "No problems" in report["summary"]


def test_unknown_rule_still_gets_an_item(tmp_path, catalog):
    f = index_finding(10)
    f.rule = "BA299"
    report = offline(tmp_path, catalog, [f])
    assert report["items"][0]["findings"] == ["F1"]
    assert f.message in report["items"][0]["fix"]


def test_catalog_guidance_overrides(tmp_path):
    rules = tmp_path / "r"
    rules.mkdir()
    from advisor_support import RULES

    from backend_audit.catalog import load_catalog

    (rules / "a.toml").write_text(RULES + '\n[catalog.advisor.rule.BA201]\ntests = "Run the {model} index test."\n', "utf-8")
    report = build_report(scan_result(tmp_path, [index_finding(10)]), load_catalog(rules_dir=rules),
                          AdvisorOptions(use_llm=False))
    assert report["items"][0]["tests"] == "Run the Book index test."


def test_without_key_or_with_no_llm_anthropic_is_never_imported(tmp_path):
    code = f"""
import sys, os
sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})
os.environ.pop("ANTHROPIC_API_KEY", None)
from pathlib import Path
from advisor_support import make_catalog, index_finding, scan_result
from backend_audit.advisor import AdvisorOptions, build_report
cat = make_catalog(Path({str(tmp_path)!r}))
build_report(scan_result(Path({str(tmp_path)!r}), [index_finding(3)]), cat, AdvisorOptions(use_llm=True))
os.environ["ANTHROPIC_API_KEY"] = "sk-ant-test"
build_report(scan_result(Path({str(tmp_path)!r}), [index_finding(3)]), cat, AdvisorOptions(use_llm=False))
print("anthropic" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- rendering -----------------------------------------------------------------------------------
def test_report_markdown(tmp_path, catalog):
    report = offline(tmp_path, catalog, [index_finding(10), index_finding(20), n1_finding()])
    md = report_markdown(report)
    assert "### R1 [P0] Filter on a column without an index: Book.isbn (2 sites)" in md
    assert "`app/views.py:10` (F2)" in md
    for label in ("**Impact:**", "**Fix:**", "**Trade-offs:**", "**Tests to add:**", "**Rollout:**", "**Monitoring:**"):
        assert label in md
    assert report["summary"] in md
    assert report_markdown(None) == ""
    assert report_markdown({"items": [{"title": None}, "junk"]})  # tolerant of partial reports


# --- redaction -----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, secret, kept", [
    ('AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"', "AKIAIOSFODNN7EXAMPLE", "AWS_ACCESS_KEY_ID"),
    ("token: ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "token"),
    ("gho_abcdefghijklmnopqrstuvwxyz0123456789AB", "gho_abcdefghijklmnopqrstuvwxyz0123456789AB", ""),
    ("x = 'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz'", "github_pat_11ABCDEFG0123456789", "x ="),
    ("SLACK = 'xoxb-1234567890-abcdefghij'", "xoxb-1234567890-abcdefghij", "SLACK"),
    ("stripe.api_key = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe.api_key"),
    ("Anthropic(api_key='sk-ant-api03-abcdefghijklmnopqrstuvwxyz')", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "Anthropic(api_key="),
    ("OpenAI(key='sk-proj-abcdefghijklmnopqrstuvwxyz012345')", "sk-proj-abcdefghijklmnopqrstuvwxyz012345", "OpenAI(key="),
    ("GMAPS = 'AIzaSyA-abcdefghijklmnopqrstuvwxyz01234'", "AIzaSyA-abcdefghijklmnopqrstuvwxyz01234", "GMAPS"),
    ("auth = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.abcDEF123_-xyz'", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ", "auth"),
    ('password = "hunter2"', "hunter2", "password = "),
    ("SECRET_KEY = 'django-insecure-abc'", "django-insecure-abc", "SECRET_KEY = "),
    ("db_password: str = 'p@ss'", "p@ss", "db_password: str = "),
    ('connect(host="db", password="pw123")', "pw123", 'connect(host="db", password='),
    ('settings = {"client_secret": "abc-123", "name": "svc"}', "abc-123", '"client_secret": '),
    ("DB_PASSWORD=supersecret", "supersecret", "DB_PASSWORD="),
    ("export API_TOKEN=tok_12345", "tok_12345", "export API_TOKEN="),
    ("   12 | REDIS_PASSWORD=abc123", "abc123", "REDIS_PASSWORD="),
    ("url = 'postgres://app:s3cret@db:5432/app'", "s3cret", "postgres://app:"),
    ("engine = create_engine('mysql+pymysql://root:rootpw@localhost/db')", "rootpw", "mysql+pymysql://root:"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----", "MIIEpAIBAAKCAQEA", "PRIVATE KEY"),
    ("key = '''-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B", "MIIEvQIBADANBgkqhkiG9w0B", "key = "),
    ("headers = {'Authorization': 'Bearer abcdefghijklmnop123456'}", "abcdefghijklmnop123456", "Authorization"),
    ('psycopg2.connect("dbname=app user=app password=pgpw123 host=db")', "pgpw123", "password="),
    ('conn = "Server=db;Database=x;User Id=sa;Password=Pa55w;"', "Pa55w", "Password="),
    ("  > 14 | AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI/K7MDENG", "AWS_SECRET_ACCESS_KEY="),
    ('PRIVATE_TOKEN = """multi\nline-secret"""', "line-secret", "PRIVATE_TOKEN = "),
])
def test_redaction(text, secret, kept):
    out = redact(text)
    assert secret not in out
    assert MASK in out
    assert kept in out


@pytest.mark.parametrize("text", [
    'password = request.POST["password"]',
    "token = get_token(user)",
    "if not password:",
    "cursor.execute('select * from users where id = %s', [user_id])",
    "def check_password(self, raw_password):",
    "secret_name = settings.SECRET_NAME",
    "connect(host=h, password=pw)",
    "connect(password=pw, host=h)",
    'redis.Redis(host="r", password=os.environ["REDIS_PASSWORD"])',
    'token = ""',
])
def test_redaction_keeps_code_that_holds_no_secret(text):
    assert redact(text) == text


def test_redact_obj_walks_nested_values():
    value = {"excerpt": 'password = "x1"', "related": [{"message": "uses AKIAIOSFODNN7EXAMPLE"}], "n": 3}
    out = redact_obj(value)
    assert out == {"excerpt": f'password = "{MASK}"', "related": [{"message": f"uses {MASK}"}], "n": 3}


def test_planted_secrets_do_not_survive_the_payload():
    from backend_audit.advisor.llm import finding_payload

    text = json.dumps(finding_payload("F1", secret_finding()))
    for secret in PLANTED.values():
        assert secret not in text
    assert "cursor.execute" in text and "DATABASE_URL" in text  # identifiers kept


def test_analyzer_written_code_and_dialect_shape_the_offline_fix(tmp_path, catalog):
    f = index_finding(10)
    f.context = {"model": "Order", "field": "status", "table": "orders", "columns": ["status"], "dialect": "mysql",
                 "index_change": "status = mapped_column(String, index=True)",
                 "migration": "op.create_index('orders_status_idx', 'orders', ['status'])"}
    item = offline(tmp_path, catalog, [f])["items"][0]
    assert "```python\nstatus = mapped_column(String, index=True)\n\n# migration\nop.create_index(" in item["fix"]
    assert "db_index=True)\n```" not in item["fix"]  # the rule's generic Django example is not shown
    assert "ALGORITHM=INPLACE" in item["rollout"] and "CONCURRENTLY" not in item["rollout"]
    assert item["title"].endswith("Order.status")


def test_long_reports_list_the_lower_items_one_line_each(tmp_path, catalog):
    findings = [index_finding(line, path=f"app/v{line}.py") for line in range(1, 31)]
    for n, f in enumerate(findings):
        f.context = {"model": "Book", "field": f"f{n}"}
    report = offline(tmp_path, catalog, findings)
    md = report_markdown(report, detail_limit=5)
    assert md.count("**Fix:**") == 5
    assert "### Also to fix (25 more)" in md and "- **R30** [" in md
    assert report_markdown(report, detail_limit=None).count("**Fix:**") == 30


def test_rule_specific_guidance_wins_over_the_category(tmp_path):
    from backend_audit.advisor.offline import guidance
    from backend_audit.catalog import Catalog

    assert "DROP INDEX CONCURRENTLY" in guidance(Catalog(), "BA208", "missing-index")["rollout"]
    assert "CREATE INDEX CONCURRENTLY" in guidance(Catalog(), "BA201", "missing-index")["rollout"]
    assert "never answers" in guidance(Catalog(), "BA403", "blocking-io")["tests"]
