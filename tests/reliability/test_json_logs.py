"""SAMHANDLING_LOG_FORMAT=json as an operator runs it: every line a running ``samhandling serve``
writes, uvicorn's own included, is one JSON object, and answers carry the request id."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from processes import ServiceProcess


def test_a_served_instance_logs_json_lines_and_echoes_the_request_id(tmp_path: Path) -> None:
    env = {"SAMHANDLING_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'json.db'}",
           "SAMHANDLING_MAIL_FOLDER": str(tmp_path / "mail"), "SAMHANDLING_LOG_FORMAT": "json",
           "SAMHANDLING_LOG_LEVEL": "INFO"}
    log = tmp_path / "serve.log"
    service = ServiceProcess(env, log).start().wait_ready()
    try:
        answer = httpx.get(service.url + "/cases", headers={"X-Request-ID": "proxy-4711"}, timeout=5)
        assert answer.status_code == 401 and answer.headers["x-request-id"] == "proxy-4711"
    finally:
        service.stop()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
    assert any(line["logger"].startswith("uvicorn") and "startup complete" in line["message"] for line in lines)
