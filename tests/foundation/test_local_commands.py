"""A newcomer's local commands: ``python -m devstack run`` says where the API and the
dashboard are, and ``python -m devstack drop`` puts a file into that stack's datasets
container, where intake picks it up (no Azure CLI needed)."""
from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2 as httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = "gpt-4o-mini-2024-07-18"
SAMPLE = ROOT / "devstack" / "samples" / "support-chat.jsonl"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _devstack(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "devstack", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """`python -m devstack run` in a process of its own, with its data in a temporary folder."""
    state_dir = tmp_path_factory.mktemp("stack")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "devstack", "run", "--port", str(port), "--state-dir",
                             str(state_dir)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    printed: list[str] = []
    deadline = time.monotonic() + 120
    while not any(line.startswith("Drop a dataset") for line in printed):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("`python -m devstack run` did not come up:\n" + "".join(printed))
        try:
            printed.append(lines.get(timeout=1))
        except queue.Empty:
            pass
    yield {"proc": proc, "printed": printed, "state_dir": state_dir, "port": port}
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def _printed(running, prefix: str) -> str:
    return next(line.split(": ", 1)[1].strip() for line in running["printed"] if line.startswith(prefix))


def test_run_prints_the_dashboard_url_and_the_page_answers(running):
    url = _printed(running, "Dashboard")
    assert url == f"http://127.0.0.1:{running['port']}/api/dashboard"
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Fine-tuning autopilot" in page.text
    assert (running["state_dir"] / "stack.json").exists()


def test_a_dropped_file_is_picked_up_and_a_broken_line_is_reported(running, tmp_path):
    api = _printed(running, "Local stack is up. HTTP API")
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:12]
    lines[4] = '{"messages": [{"role": "user", "content": "no answer"}'   # line 5: not JSON
    bad = tmp_path / "broken-drop.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = _devstack("drop", str(bad), "--model", MODEL, "--state-dir", str(running["state_dir"]))
    assert done.returncode == 0, done.stderr
    assert f"dropped {MODEL}/broken-drop.jsonl" in done.stdout

    deadline = time.monotonic() + 90
    row = None
    while time.monotonic() < deadline:
        items = httpx.get(f"{api}/datasets", timeout=10).json()["items"]
        row = next((d for d in items if d.get("name") == f"{MODEL}/broken-drop.jsonl"), None)
        if row and row.get("status") == "rejected":
            break
        time.sleep(1)
    assert row is not None and row["status"] == "rejected", row
    report = httpx.get(f"{api}/datasets/{MODEL}/broken-drop.jsonl", timeout=10).json()
    assert any(e.get("line") == 5 for e in report["report"]["errors"]), report


def test_drop_says_what_is_wrong_without_a_traceback(running, tmp_path):
    missing = _devstack("drop", str(tmp_path / "nope.jsonl"), "--model", MODEL, "--state-dir",
                        str(running["state_dir"]))
    assert missing.returncode == 1 and "nope.jsonl: no such file" in missing.stderr
    assert "Traceback" not in missing.stderr
    grader_wrong = _devstack("drop", str(SAMPLE), "--model", MODEL, "--method", "dpo", "--grader", str(SAMPLE),
                             "--state-dir", str(running["state_dir"]))
    assert grader_wrong.returncode == 1 and "--grader goes with --method reinforcement" in grader_wrong.stderr
    no_stack = _devstack("drop", str(SAMPLE), "--model", MODEL, "--state-dir", str(tmp_path / "no-stack"))
    # Without a running stack's record, the local settings name Azurite's well-known port: whether or not
    # something answers there, the command ends with a sentence, never a traceback.
    assert "Traceback" not in no_stack.stderr
