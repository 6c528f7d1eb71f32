"""`backend-audit github-comment`: one PR comment, created once and updated in place, against a
loopback HTTP server that speaks the part of the GitHub REST API we use and records requests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from test_cli import run_cli, write

from backend_audit.integrations.github import MARKER, MAX_BODY

REPO = "acme/shop"
PR = 42
TITLE = "Make checkout faster IGNORE PREVIOUS INSTRUCTIONS"
DESCRIPTION = "Please approve. <script>alert(1)</script> SECRET-DESCRIPTION"


class FakeGitHub:
    """Issue comments of one repository, paginated like GitHub (Link headers)."""

    def __init__(self, per_page: int = 2):
        self.comments: list[dict] = []
        self.requests: list[dict] = []
        self.per_page = per_page
        self.next_id = 1000
        self.fail_with: int | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, payload, headers: dict[str, str] | None = None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                fake.requests.append({"method": self.command, "path": self.path, "body": body,
                                      "auth": self.headers.get("Authorization"),
                                      "accept": self.headers.get("Accept")})
                return json.loads(body) if body else None

            def do_GET(self):
                self._record()
                if fake.fail_with:
                    return self._send(fake.fail_with, {"message": "Resource not accessible by integration"})
                url = urlparse(self.path)
                if url.path != f"/repos/{REPO}/issues/{PR}/comments":
                    return self._send(404, {"message": "Not Found"})
                page = int(parse_qs(url.query).get("page", ["1"])[0])
                start = (page - 1) * fake.per_page
                items = fake.comments[start:start + fake.per_page]
                headers = {}
                if start + fake.per_page < len(fake.comments):
                    base = f"http://127.0.0.1:{fake.port}{url.path}"
                    headers["Link"] = (f'<{base}?per_page={fake.per_page}&page={page + 1}>; rel="next", '
                                       f'<{base}?per_page={fake.per_page}&page=99>; rel="last"')
                self._send(200, items, headers)

            def do_POST(self):
                payload = self._record()
                if self.path != f"/repos/{REPO}/issues/{PR}/comments":
                    return self._send(404, {"message": "Not Found"})
                comment = {"id": fake.next_id, "body": payload["body"], "user": {"login": "github-actions[bot]"}}
                fake.next_id += 1
                fake.comments.append(comment)
                self._send(201, comment)

            def do_PATCH(self):
                payload = self._record()
                prefix = f"/repos/{REPO}/issues/comments/"
                if not self.path.startswith(prefix):
                    return self._send(404, {"message": "Not Found"})
                cid = int(self.path[len(prefix):])
                for comment in fake.comments:
                    if comment["id"] == cid:
                        comment["body"] = payload["body"]
                        return self._send(200, comment)
                self._send(404, {"message": "Not Found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def github():
    fake = FakeGitHub()
    yield fake
    fake.close()


def actions_env(tmp_path: Path, api_url: str, event: dict | None = None) -> dict[str, str]:
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(event or {
        "action": "synchronize", "number": PR,
        "pull_request": {"number": PR, "title": TITLE, "body": DESCRIPTION,
                         "head": {"ref": "feature/IGNORE-ALL"}, "base": {"ref": "main"}},
    }))
    return {"GITHUB_API_URL": api_url, "GITHUB_REPOSITORY": REPO, "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_TOKEN": "ghs_test_token"}


def post(tmp_path: Path, env: dict[str, str], report: str = "## backend-audit\n\n2 findings\n", *extra: str):
    write(tmp_path, "report.md", report)
    return run_cli(["github-comment", "--body-file", "report.md", *extra], tmp_path, env=env, timeout=60)


def test_first_run_posts_and_second_run_updates_the_same_comment(tmp_path, github):
    env = actions_env(tmp_path, github.url)
    github.comments.append({"id": 7, "body": "LGTM", "user": {"login": "alice"}})
    proc = post(tmp_path, env, "first report\n")
    assert proc.returncode == 0, proc.stderr
    assert [r["method"] for r in github.requests] == ["GET", "POST"]
    assert github.requests[0]["auth"] == "Bearer ghs_test_token"
    assert github.requests[0]["accept"] == "application/vnd.github+json"
    assert len(github.comments) == 2
    ours = github.comments[1]
    assert ours["body"].startswith(MARKER) and "first report" in ours["body"]

    github.requests.clear()
    proc = post(tmp_path, env, "second report\n")
    assert proc.returncode == 0, proc.stderr
    assert [r["method"] for r in github.requests] == ["GET", "PATCH"]
    assert github.requests[1]["path"] == f"/repos/{REPO}/issues/comments/{ours['id']}"
    assert len(github.comments) == 2  # still one comment of ours, updated in place
    assert "second report" in github.comments[1]["body"] and "first report" not in github.comments[1]["body"]
    assert github.comments[0]["body"] == "LGTM"


def test_finds_our_comment_on_a_later_page(tmp_path, github):
    env = actions_env(tmp_path, github.url)
    for i in range(5):
        github.comments.append({"id": i + 1, "body": f"review comment {i}", "user": {"login": "bob"}})
    github.comments.append({"id": 77, "body": f"{MARKER}\nold report", "user": {"login": "github-actions[bot]"}})
    github.comments.append({"id": 78, "body": "later chatter", "user": {"login": "bob"}})
    proc = post(tmp_path, env, "fresh report\n")
    assert proc.returncode == 0, proc.stderr
    methods = [r["method"] for r in github.requests]
    assert methods == ["GET", "GET", "GET", "PATCH"]  # pages 1-3 (2 per page), then the update
    assert github.requests[-1]["path"].endswith("/issues/comments/77")
    assert len(github.comments) == 7 and "fresh report" in github.comments[5]["body"]


def test_body_never_contains_the_pr_title_or_description(tmp_path, github):
    env = actions_env(tmp_path, github.url)
    assert post(tmp_path, env).returncode == 0
    assert post(tmp_path, env).returncode == 0
    sent = " ".join(r["body"] for r in github.requests)
    for secret in (TITLE, DESCRIPTION, "IGNORE", "SECRET-DESCRIPTION", "feature/IGNORE-ALL"):
        assert secret not in sent


def test_long_report_is_truncated_to_githubs_limit(tmp_path, github):
    env = actions_env(tmp_path, github.url)
    assert post(tmp_path, env, "x" * (MAX_BODY + 5000)).returncode == 0
    body = github.comments[0]["body"]
    assert len(body) <= MAX_BODY and "truncated" in body and body.startswith(MARKER)


def test_issue_comment_event_and_explicit_pr_number(tmp_path, github):
    env = actions_env(tmp_path, github.url, {"issue": {"number": PR, "title": TITLE}})
    assert post(tmp_path, env).returncode == 0
    env = actions_env(tmp_path, github.url, {"push": True})
    proc = post(tmp_path, env)
    assert proc.returncode == 2 and "not a pull request" in proc.stderr
    assert post(tmp_path, env, "r\n", "--pr", str(PR)).returncode == 0
    assert len(github.comments) == 1  # the --pr run updated the comment of the first run


@pytest.mark.parametrize("drop", ["GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_EVENT_PATH"])
def test_missing_environment_is_a_clear_exit_2(tmp_path, github, drop):
    env = actions_env(tmp_path, github.url)
    env[drop] = ""
    proc = post(tmp_path, env)
    assert proc.returncode == 2 and drop in proc.stderr
    assert github.requests == []


def test_api_errors_and_bad_input_are_clear_exit_2(tmp_path, github):
    env = actions_env(tmp_path, github.url)
    github.fail_with = 403
    proc = post(tmp_path, env)
    assert proc.returncode == 2 and "HTTP 403" in proc.stderr and "not accessible" in proc.stderr
    assert "ghs_test_token" not in proc.stderr
    # nothing listens there
    proc = post(tmp_path, {**env, "GITHUB_API_URL": "http://127.0.0.1:9"})
    assert proc.returncode == 2 and "failed" in proc.stderr
    proc = post(tmp_path, {**env, "GITHUB_REPOSITORY": "no-slash"})
    assert proc.returncode == 2 and "owner/name" in proc.stderr
    bad_event = tmp_path / "bad.json"
    bad_event.write_text("{oops")
    proc = post(tmp_path, {**env, "GITHUB_EVENT_PATH": str(bad_event)})
    assert proc.returncode == 2 and "not JSON" in proc.stderr
    proc = run_cli(["github-comment", "--body-file", "missing.md"], tmp_path, env=env)
    assert proc.returncode == 2 and "missing.md" in proc.stderr


def test_action_metadata_runs_the_real_commands():
    """action.yml: a composite action that installs its own source, writes SARIF and the markdown
    report, posts the comment with this command, and passes inputs to shells only through env."""
    import re

    yaml = pytest.importorskip("yaml")

    root = Path(__file__).resolve().parents[1]
    action = yaml.safe_load((root / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    scripts = "\n".join(step.get("run", "") for step in steps)
    for step in steps:
        if "run" in step:
            assert step["shell"] == "bash"
            # no ${{ }} expression inside a script: inputs arrive as environment variables
            assert "${{" not in step["run"], step["name"]
    assert any(step.get("uses", "").startswith("actions/setup-python@") for step in steps)
    assert any(step.get("uses", "").startswith("github/codeql-action/upload-sarif@") for step in steps)
    assert "pip install" in scripts and "$ACTION_PATH" in scripts
    assert "--format sarif" in scripts and "--format markdown" in scripts
    assert "github-comment --body-file" in scripts
    comment = next(step for step in steps if "github-comment" in step.get("run", ""))
    assert re.fullmatch(r"\$\{\{\s*inputs\.github-token\s*\}\}", comment["env"]["GITHUB_TOKEN"])
    assert "pull_request" in comment["if"]
    assert set(action["inputs"]) >= {"paths", "fail-on", "diff-base", "args", "github-token", "comment"}
