"""End to end: `backend-audit DIR` with the real SDK against the loopback Messages-API server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from loopback_anthropic import LoopbackAnthropic, Reply

PLANTED_STRIPE = "sk_live_" + "PLANTEDe2e0123456789abcd"
PLANTED_PASSWORD = "e2e-planted-password-value"

APP = f'''import time

from fastapi import FastAPI

app = FastAPI()


@app.get("/slow")
async def slow():
    stripe_key = "{PLANTED_STRIPE}"
    time.sleep(1)
    db_password = "{PLANTED_PASSWORD}"
    return {{"ok": True, "k": stripe_key, "p": db_password}}
'''

BIN = Path(sys.executable).with_name("backend-audit")


@pytest.fixture()
def project(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "app.py").write_text(APP, "utf-8")
    return root


def _run(project: Path, server: LoopbackAnthropic | None, *args: str, key: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "BACKEND_AUDIT_"))}
    env.update({"NO_COLOR": "1", "NO_PROXY": "127.0.0.1,localhost", "COLUMNS": "120"})
    if server is not None:
        env["ANTHROPIC_BASE_URL"] = server.url
    if key:
        env["ANTHROPIC_API_KEY"] = "sk-ant-e2e-test"
    cmd = [str(BIN) if BIN.exists() else sys.executable, *([] if BIN.exists() else ["-m", "backend_audit"])]
    return subprocess.run([*cmd, str(project), "--no-cache", "--jobs", "1", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_cli_prints_the_model_report_with_the_same_exit_code_as_no_llm(project):
    with LoopbackAnthropic() as server:
        offline = _run(project, server, "--no-llm")
        assert server.requests == []  # --no-llm: no request at all
        assert "BA401" in offline.stdout, offline.stdout + offline.stderr  # needs the blocking-io analyzer
        assert "Written offline" in offline.stdout

        llm = _run(project, server)
        assert llm.returncode == offline.returncode
        assert "MODEL SUMMARY: fix the index first." in llm.stdout
        assert "Model item for F1" in llm.stdout and "BA401" in llm.stdout
        assert len(server.messages()) == 1  # one request sequence: count, then one message
        assert [r.path for r in server.requests] == ["/v1/messages/count_tokens", "/v1/messages"]
        body = server.messages()[0].body
        assert "stripe_key = " in body and "time.sleep(1)" in body  # the excerpt around the finding was sent
        for recorded in server.requests:
            assert PLANTED_STRIPE not in recorded.body and PLANTED_PASSWORD not in recorded.body

        as_json = _run(project, server, "--format", "json")
        doc = json.loads(as_json.stdout)
        assert as_json.returncode == offline.returncode
        assert doc["report"]["source"] == "llm" and doc["report"]["stats"]["from_cache"] is True
        assert len(server.messages()) == 1  # unchanged findings: the reply cache answered


def test_cli_api_failure_keeps_findings_and_exit_code(project):
    with LoopbackAnthropic() as server:
        baseline = _run(project, server, "--no-llm", "--format", "json")
        server.default = lambda body: Reply.json(500)
        failed = _run(project, server, "--format", "json")
    assert failed.returncode == baseline.returncode
    doc, base = json.loads(failed.stdout), json.loads(baseline.stdout)
    assert [f["fingerprint"] for f in doc["findings"]] == [f["fingerprint"] for f in base["findings"]]
    assert doc["findings"]  # the findings stand
    assert doc["report"]["source"] == "offline" and "500" in doc["report"]["warnings"][0]
    assert "using the offline report" in failed.stderr


def test_cli_without_key_prints_the_offline_report(project):
    with LoopbackAnthropic() as server:
        result = _run(project, server, key=False)
        assert server.requests == []
    assert "Written offline" in result.stdout and "Remediation report" in result.stdout
