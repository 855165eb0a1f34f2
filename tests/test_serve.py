"""`serve`: TensorFlow Serving's REST API on loopback, its errors, and new versions
picked up without a restart."""

from __future__ import annotations

import base64
import gzip
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest

import textlstm

SENTENCES = ["great superb film", "awful boring waste"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(proc: subprocess.Popen, text: str, seconds: float = 300) -> str:
    """Read the server's stderr until a line containing ``text`` arrives (unbuffered, so
    that select() never waits on a line already read into a buffer)."""
    pending: bytes = getattr(proc, "pending", b"")
    seen: list[str] = []
    while True:
        while b"\n" in pending:
            raw, pending = pending.split(b"\n", 1)
            line = raw.decode("utf-8", "replace")
            seen.append(line)
            if text in line:
                proc.pending = pending  # type: ignore[attr-defined]
                return line
        ready, _, _ = select.select([proc.stderr], [], [], seconds)
        assert ready, f"server did not log {text!r}; it logged: {seen[-5:]}"
        chunk = os.read(proc.stderr.fileno(), 1 << 16)
        assert chunk, f"server exited ({proc.poll()}) before logging {text!r}: {seen[-5:]}"
        pending += chunk


def _drain(proc: subprocess.Popen) -> None:
    """Forget every log line the server has written so far."""
    pending: bytes = getattr(proc, "pending", b"")
    while select.select([proc.stderr], [], [], 0)[0]:
        chunk = os.read(proc.stderr.fileno(), 1 << 16)
        if not chunk:
            break
        pending += chunk
    proc.pending = pending.rsplit(b"\n", 1)[-1] if b"\n" in pending else pending  # type: ignore[attr-defined]


def _start(export_dir: Path, port: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "textlstm", "serve", str(export_dir), "--port", str(port), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def _call(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=body, method="POST" if body is not None else "GET", headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def server(trained_run, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    # The URLs carry the name given at export, not the folder's.
    export_dir = tmp_path_factory.mktemp("serve") / "exported"
    textlstm.export(trained_run.output_dir, export_dir, name="sentiment")
    port = _free_port()
    proc = _start(export_dir, port, "--poll-seconds", "0.2", "--max-body-bytes", "4000", "--max-batch", "4", "-v")
    try:
        # The XLA fast path answers only after matching the signature on the probe texts.
        _wait_for(proc, "compiled the fast path of version 1")
        _wait_for(proc, "serving sentiment versions [1]")
        yield f"http://127.0.0.1:{port}/v1/models/sentiment", export_dir, proc
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_serve_status_metadata_and_predict(server, trained_run) -> None:
    base, _, _ = server
    status, body = _call(base)
    assert status == 200
    assert body["model_version_status"][0] == {
        "version": "1",
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }
    status, body = _call(base + "/metadata")
    assert status == 200 and body["model_spec"] == {"name": "sentiment", "signature_name": "", "version": "1"}
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["text"]["dtype"] == "DT_STRING"
    assert signature["inputs"]["text"]["tensor_shape"] == {"dim": [{"size": "-1"}]}
    assert signature["outputs"]["probabilities"]["dtype"] == "DT_FLOAT"

    status, body = _call(base + ":predict", json.dumps({"instances": SENTENCES}).encode())
    assert status == 200, body
    expected = textlstm.predict(trained_run.output_dir, SENTENCES)
    assert [p["label"] for p in body["predictions"]] == [e["label"] for e in expected] == ["pos", "neg"]
    for prediction, want in zip(body["predictions"], expected, strict=True):
        assert prediction["probabilities"] == pytest.approx(list(want["probabilities"].values()), abs=1e-5)
        assert prediction["top_k_labels"][0] == want["label"]

    status, columnar = _call(base + "/versions/1:predict", json.dumps({"inputs": {"text": SENTENCES}}).encode())
    assert status == 200 and columnar["outputs"]["label"] == ["pos", "neg"]
    status, named = _call(base + ":predict", json.dumps({"instances": [{"text": SENTENCES[0]}]}).encode())
    assert status == 200 and named["predictions"][0]["label"] == "pos"
    # TensorFlow Serving's binary form of a string: {"b64": base64 of its bytes}.
    encoded = [{"b64": base64.b64encode(s.encode()).decode()} for s in SENTENCES]
    status, b64 = _call(base + ":predict", json.dumps({"instances": encoded}).encode())
    assert status == 200 and [p["label"] for p in b64["predictions"]] == ["pos", "neg"], b64
    status, b64 = _call(base + ":predict", json.dumps({"inputs": {"text": encoded[1]}}).encode())
    assert status == 200 and b64["outputs"]["label"] == ["neg"], b64


def test_serve_concurrent_requests_all_answered(server) -> None:
    base, _, _ = server
    bodies = [json.dumps({"instances": [SENTENCES[i % 2]] * (1 + i % 3)}).encode() for i in range(24)]
    _drain(server[2])
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda b: _call(base + ":predict", b), bodies))
    for i, (status, body) in enumerate(results):
        assert status == 200, body
        assert [p["label"] for p in body["predictions"]] == [["pos", "neg"][i % 2]] * (1 + i % 3)
    # The server logs each model call (-v): requests that waited together shared one.
    batches = []
    while len(batches) < 2 or sum(b[1] for b in batches) < len(bodies):
        line = _wait_for(server[2], "batch of ")
        texts, requests = (int(w) for w in line.split() if w.isdigit())
        batches.append((texts, requests))
    assert sum(b[1] for b in batches) == len(bodies)
    assert any(requests > 1 for _, requests in batches), batches
    assert max(texts for texts, _ in batches) <= 4 + 2  # max_batch, plus the last request's overshoot


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (":predict", b"{not json", 400, "JSON Parse error"),
        (":predict", b'{"instances": [1, "a"]}', 400, "expected every instance to be a string"),
        (":predict", b'{"instances": [{"txt": "a"}]}', 400, "instance 0 is an object with keys ['txt']; expected"),
        (":predict", b'{"instances": [{"b64": "%%"}]}', 400, "instance 0: its b64 value is not base64 of UTF-8"),
        (":predict", b'{"instances": [' + b"1" * 5000 + b"]}", 413, "over the limit"),
        (":predict", b'{"instances": []}', 400, "expected a non-empty list of strings"),
        (":predict", b'{"instances": ["a"], "signature_name": "other"}', 400, 'signature name: "other" not found'),
        (":predict", b'{"texts": ["a"]}', 400, 'expected exactly one of "instances"'),
        (":predict", b'{"instances": ["caf\xe9"]}', 400, "not valid UTF-8"),
        (":predict", json.dumps({"instances": ["x" * 5000]}).encode(), 413, "over the limit of 4000 bytes"),
        ("/versions/7:predict", b'{"instances": ["a"]}', 404, "Servable not found for request: Specific(sentiment, 7)"),
        ("/versions/7", None, 404, "Specific(sentiment, 7)"),
        ("/bogus/path", None, 404, "unknown path"),
        (":predict", b'{"instances": ["ok", "bad \\ud800"]}', 400, "instance 1 holds a lone surrogate (\\ud800)"),
        # Under the fixture's 4,000-byte limit, deeper than Python's JSON decoder goes.
        (":predict", b'{"instances": ' + b"[" * 1900 + b"]" * 1900 + b"}", 400, "JSON nested too deeply"),
    ],
)
def test_serve_errors(server, path: str, body: bytes | None, status: int, message: str) -> None:
    base, _, proc = server
    got, answer = _call(base + path, body)
    assert got == status and message in answer["error"], answer
    assert proc.poll() is None  # still serving


def test_serve_bad_encoding_and_paths_outside_the_api_get_json_errors(server) -> None:
    base, _, proc = server
    plain = b'{"instances": ["great superb film"]}'
    status, body = _call(base + ":predict", plain, {"Content-Encoding": "gzip"})
    assert status == 400 and body["error"].startswith("cannot decompress the gzip request body"), body
    status, body = _call(base + ":predict", plain, {"Content-Encoding": "br"})
    assert status == 415 and body["error"].startswith("unsupported Content-Encoding 'br'"), body
    status, body = _call(base + ":predict", gzip.compress(plain)[:20], {"Content-Encoding": "gzip"})
    assert status == 400 and "ends early" in body["error"], body
    status, body = _call(base + ":predict", gzip.compress(plain) + b"more", {"Content-Encoding": "gzip"})
    assert status == 400 and "goes on after its stream" in body["error"], body
    # 1,028 bytes on the wire, 1 MB once inflated: the limit (4,000 bytes here) counts the latter.
    bomb = gzip.compress(b'{"instances": ["' + b"a" * 1_000_000 + b'"]}')
    status, body = _call(base + ":predict", bomb, {"Content-Encoding": "gzip"})
    assert status == 413 and "once decompressed" in body["error"], body
    for encoding, packed in (("gzip", gzip.compress(plain)), ("deflate", zlib.compress(plain))):
        status, body = _call(base + ":predict", packed, {"Content-Encoding": encoding})
        assert status == 200 and body["predictions"][0]["label"] == "pos", (encoding, body)
    root = base.split("/v1/")[0]
    for path in ("/", "/v1/models", "/v1/foo"):
        status, body = _call(root + path)
        assert status == 404 and body["error"].startswith(f"unknown path {path};"), (path, body)
    assert proc.poll() is None


def test_serve_one_bad_text_fails_only_its_own_request(server) -> None:
    base, _, _ = server
    bad = json.dumps({"instances": ["bad \ud800"]}, ensure_ascii=True).encode()
    good = json.dumps({"instances": SENTENCES}).encode()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda b: _call(base + ":predict", b), [good, bad] * 8))
    assert [status for status, _ in results] == [200, 400] * 8
    assert all([p["label"] for p in body["predictions"]] == ["pos", "neg"] for _, body in results[::2])


def test_serve_unknown_model_name(server) -> None:
    base, _, _ = server
    status, body = _call(base.replace("/sentiment", "/other") + ":predict", b'{"instances": ["a"]}')
    assert status == 404 and body == {"error": "Servable not found for request: Latest(other)"}


def test_serve_picks_up_a_new_version(server) -> None:
    base, export_dir, proc = server
    staging = export_dir.parent / ".staging"
    shutil.copytree(export_dir / "1", staging)
    staging.rename(export_dir / "2")  # how textlstm export publishes a version: one rename
    _wait_for(proc, "picked up version(s) [2]")
    status, body = _call(base)
    assert status == 200 and [v["version"] for v in body["model_version_status"]] == ["2", "1"]
    status, body = _call(base + "/metadata")
    assert body["model_spec"]["version"] == "2"


@pytest.mark.slow
def test_serve_startup_errors(trained_run, tmp_path: Path) -> None:
    port = _free_port()
    missing = subprocess.run(
        [sys.executable, "-m", "textlstm", "serve", str(tmp_path / "none"), "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 2 and "error: export folder not found" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = subprocess.run(
        [sys.executable, "-m", "textlstm", "serve", str(tmp_path / "empty"), "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert empty.returncode == 2 and "holds no loadable SavedModel version" in empty.stderr

    textlstm.export(trained_run.output_dir, tmp_path / "m")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        busy = subprocess.run(
            [sys.executable, "-m", "textlstm", "serve", str(tmp_path / "m"), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert busy.returncode == 2
    assert f"error: port {port} on 127.0.0.1 is in use; expected a free port" in busy.stderr


def test_batcher_splits_fast_batches_by_length_and_keeps_order() -> None:
    import asyncio

    import numpy as np

    from textlstm import serving

    calls: list[list[str]] = []

    class FakeServable:
        fast = object()  # as if the XLA fast path were loaded

        def run(self, texts: list[str]) -> dict[str, np.ndarray]:
            calls.append(texts)
            return {"length": np.array([len(t) for t in texts]), "text": np.array(texts, dtype=object)}

    texts = [("word " * n).strip() for n in (9, 1, 30, 4, 4, 17, 2, 25, 8, 3, 40, 6, 11)]
    batcher = serving.Batcher(max_batch=10, delay_seconds=0.0)
    try:
        out = asyncio.run(batcher._run(FakeServable(), texts))  # noqa: SLF001
    finally:
        batcher.executor.shutdown()
    assert list(out["text"]) == texts
    assert list(out["length"]) == [len(t) for t in texts]
    # 13 texts: a full batch of 10, split into its 5 shortest and 5 longest, then 3.
    assert sorted(len(c) for c in calls) == [3, 5, 5]
    ten = sorted(texts[:10], key=len)
    assert sorted(map(tuple, calls)) == sorted([tuple(ten[:5]), tuple(ten[5:]), tuple(texts[10:])])


def test_batcher_lets_a_small_request_between_the_calls_of_a_large_one() -> None:
    import asyncio

    import numpy as np

    from textlstm import serving

    calls: list[str] = []

    class FakeServable:
        fast = None

        def run(self, texts: list[str]) -> dict[str, np.ndarray]:
            calls.append(texts[0])
            return {"text": np.array(texts, dtype=object)}

    async def both(batcher: serving.Batcher) -> tuple[dict, dict]:
        servable = FakeServable()
        return await asyncio.gather(batcher._run(servable, ["big"] * 40), batcher._run(servable, ["small"]))  # noqa: SLF001

    batcher = serving.Batcher(max_batch=4, delay_seconds=0.0)
    try:
        large, small = asyncio.run(both(batcher))
    finally:
        batcher.executor.shutdown()
    assert list(large["text"]) == ["big"] * 40 and list(small["text"]) == ["small"]
    # Ten calls of four texts: the small request's call runs after the large one's first
    # two (the calls in flight), not after all ten.
    assert len(calls) == 11 and calls.index("small") <= serving.CONCURRENT_BATCHES
