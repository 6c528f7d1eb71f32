"""Post the report as ONE pull-request comment, updated in place on every push.

`backend-audit github-comment --body-file report.md` reads the environment exactly as GitHub
Actions sets it: `GITHUB_API_URL`, `GITHUB_REPOSITORY` (owner/name), `GITHUB_EVENT_PATH` (the
event JSON, for the pull request number) and `GITHUB_TOKEN`. It lists the PR's comments (all
pages), finds ours by a hidden marker, and PATCHes it; when there is none it POSTs a new one.
The comment body is the given file only: nothing from the event (title, description, branch
names, all written by the PR's author) is ever copied into it.

Standard-library `urllib.request` with timeouts: no extra dependency for a handful of requests.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MARKER = "<!-- backend-audit -->"
MAX_BODY = 65536  # GitHub rejects longer comment bodies
TIMEOUT = 30.0
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


class GitHubError(Exception):
    """Missing environment, an unusable event, or a failed request (the CLI exits with code 2)."""


@dataclass
class Target:
    api_url: str
    repository: str
    number: int
    token: str


def target_from_env(env: dict[str, str] | None = None, number: int | None = None) -> Target:
    env = dict(os.environ if env is None else env)
    missing = [k for k in ("GITHUB_REPOSITORY", "GITHUB_TOKEN") if not env.get(k)]
    if number is None and not env.get("GITHUB_EVENT_PATH"):
        missing.append("GITHUB_EVENT_PATH")
    if missing:
        raise GitHubError(f"missing environment variable(s) {', '.join(missing)}; github-comment runs in "
                          "GitHub Actions (pass the token as env GITHUB_TOKEN: ${{ github.token }})")
    repository = env["GITHUB_REPOSITORY"]
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository):
        raise GitHubError(f"GITHUB_REPOSITORY must be owner/name (got {repository!r})")
    if number is None:
        number = pr_number(env["GITHUB_EVENT_PATH"])
    api_url = (env.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
    if not api_url.startswith(("https://", "http://")):
        raise GitHubError(f"GITHUB_API_URL must be an http(s) URL (got {api_url!r})")
    return Target(api_url=api_url, repository=repository, number=number, token=env["GITHUB_TOKEN"])


def pr_number(event_path: str) -> int:
    """The pull request (or issue) number of the event that started the workflow."""
    try:
        event = json.loads(Path(event_path).read_text("utf-8"))
    except OSError as exc:
        raise GitHubError(f"cannot read GITHUB_EVENT_PATH {event_path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError):
        raise GitHubError(f"GITHUB_EVENT_PATH {event_path} is not JSON") from None
    if isinstance(event, dict):
        for key in ("pull_request", "issue"):
            item = event.get(key)
            if isinstance(item, dict) and isinstance(item.get("number"), int):
                return item["number"]
        if isinstance(event.get("number"), int):
            return event["number"]
    raise GitHubError("the workflow event is not a pull request (no pull_request.number in "
                      "GITHUB_EVENT_PATH); run github-comment on pull_request events or pass --pr")


def comment_body(report: str) -> str:
    body = f"{MARKER}\n{report.rstrip()}\n"
    if len(body) > MAX_BODY:
        note = "\n\n_(report truncated: see the workflow log or the SARIF results for everything)_\n"
        body = body[: MAX_BODY - len(note)] + note
    return body


def _request(method: str, url: str, token: str, payload: dict | None = None) -> tuple[object, dict[str, str]]:
    data = json.dumps(payload).encode("utf-8") if payload is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Accept": "application/vnd.github+json",
        "Authorization": f"Bearer {token}",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "backend-audit",
        **({"Content-Type": "application/json"} if data is not None else {}),
    })
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            raw = resp.read()
            headers = {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as exc:
        detail = ""
        try:
            detail = json.loads(exc.read().decode("utf-8", "replace")).get("message", "")
        except Exception:
            pass
        raise GitHubError(f"GitHub API {method} {url} failed: HTTP {exc.code} {detail or exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise GitHubError(f"GitHub API {method} {url} failed: {reason}") from None
    try:
        return (json.loads(raw) if raw else None), headers
    except ValueError:
        raise GitHubError(f"GitHub API {method} {url} returned something that is not JSON") from None


def find_comment(target: Target) -> int | None:
    """The id of our comment on the PR (following every page of comments), or None."""
    url: str | None = (f"{target.api_url}/repos/{target.repository}/issues/{target.number}/comments"
                       "?per_page=100")
    pages = 0
    while url and pages < 100:
        pages += 1
        items, headers = _request("GET", url, target.token)
        if not isinstance(items, list):
            raise GitHubError(f"GitHub API GET {url} did not return a list of comments")
        for item in items:
            if isinstance(item, dict) and MARKER in str(item.get("body") or ""):
                return int(item["id"])
        m = _NEXT.search(headers.get("link", ""))
        url = m.group(1) if m else None
    return None


def post_or_update(target: Target, report: str) -> tuple[str, int]:
    """("updated" | "created", comment id)."""
    body = comment_body(report)
    existing = find_comment(target)
    if existing is not None:
        url = f"{target.api_url}/repos/{target.repository}/issues/comments/{existing}"
        _request("PATCH", url, target.token, {"body": body})
        return "updated", existing
    url = f"{target.api_url}/repos/{target.repository}/issues/{target.number}/comments"
    created, _ = _request("POST", url, target.token, {"body": body})
    comment_id = created.get("id") if isinstance(created, dict) else None
    return "created", int(comment_id) if isinstance(comment_id, int) else -1
