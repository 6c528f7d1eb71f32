"""A tiny Messages-API server on 127.0.0.1 for tests with the real `anthropic` SDK.

    with LoopbackAnthropic() as server:           # server.url -> ANTHROPIC_BASE_URL
        server.replies.append(Reply.json(429))    # scripted replies for POST /v1/messages, in order
        ...
        server.requests                           # every request: Recorded(path, headers, body)

POST /v1/messages answers from `replies` (first in, first out), then from `default` (a function of
the request body returning a Reply). POST /v1/messages/count_tokens answers `count_status` with
`{"input_tokens": len(body) // 4}` (or `count_tokens_fn(body)`). Error replies carry
`retry-after-ms: 1` so SDK retries are instant.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: str

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any = None) -> Reply:
        if payload is None:
            kind = {429: "rate_limit_error", 500: "api_error", 529: "overloaded_error",
                    400: "invalid_request_error", 401: "authentication_error"}.get(status, "api_error")
            payload = {"type": "error", "error": {"type": kind, "message": f"scripted {status}"}}
        return cls(status, json.dumps(payload), {"retry-after-ms": "1"} if status >= 400 else {})

    @classmethod
    def message(cls, text: str, stop_reason: str = "end_turn", model: str = "claude-test") -> Reply:
        return cls.json(200, message_body(text, stop_reason, model))


def message_body(text: str, stop_reason: str = "end_turn", model: str = "claude-test") -> dict[str, Any]:
    return {
        "id": "msg_loopback", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": text}], "stop_reason": stop_reason, "stop_sequence": None,
        "usage": {"input_tokens": 1234, "output_tokens": 567, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0},
    }


def finding_ids_in(body: str) -> list[str]:
    """The short finding ids (F1, F2, ...) the request carries, in order."""
    return list(dict.fromkeys(re.findall(r'\\?"id\\?": \\?"(F\d+)\\?"', body)))


def locations_in(body: str) -> dict[str, tuple[str, int]]:
    """Finding id -> (path, line) parsed from the request's <scan_data> JSON."""
    request = json.loads(body)
    text = request["messages"][0]["content"][0]["text"]
    data = json.loads(text.split("<scan_data>\n", 1)[1].split("\n</scan_data>", 1)[0])
    return {f["id"]: (f["path"], f["line"]) for g in data["groups"] for f in g["findings"]}


def good_report(body: str) -> str:
    """A valid model reply: one item per finding id in the request."""
    locs = locations_in(body)
    items = []
    for fid, (path, line) in locs.items():
        items.append({
            "priority": "P1", "finding_ids": [fid], "title": f"Model item for {fid}",
            "locations": [{"path": path, "line": line}],
            "impact": "model impact", "fix": "```python\nmodel_fix()\n```", "tradeoffs": "model tradeoffs",
            "alternatives": "model alternatives", "tests": "model tests", "rollout": "model rollout",
            "monitoring": "model monitoring", "effort": "S",
        })
    return json.dumps({"summary": "MODEL SUMMARY: fix the index first.", "items": items})


class LoopbackAnthropic:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.replies: list[Reply] = []
        self.default: Callable[[str], Reply] = lambda body: Reply.message(good_report(body))
        self.count_status = 200
        self.count_tokens_fn: Callable[[str], int] = lambda body: max(1, len(body) // 4)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode("utf-8")
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server.requests.append(Recorded(path, {k.lower(): v for k, v in self.headers.items()}, body))
                    if path.endswith("/v1/messages/count_tokens"):
                        if server.count_status == 200:
                            reply = Reply.json(200, {"input_tokens": server.count_tokens_fn(body)})
                        else:
                            reply = Reply.json(server.count_status)
                    elif path.endswith("/v1/messages"):
                        reply = server.replies.pop(0) if server.replies else server.default(body)
                    else:
                        reply = Reply.json(404)
                data = reply.body.encode("utf-8")
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", "req_loopback")
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def messages(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/v1/messages")]

    def counts(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/count_tokens")]

    def __enter__(self) -> LoopbackAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
