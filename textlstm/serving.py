"""`textlstm serve`: TensorFlow Serving's REST API for an export folder, on aiohttp.

Endpoints, as TensorFlow Serving answers them for a string-in ``serving_default``:

* ``GET  /v1/models/NAME[/versions/N]``: version status;
* ``GET  /v1/models/NAME[/versions/N]/metadata``: the signature definitions;
* ``POST /v1/models/NAME[/versions/N]:predict``: ``{"instances": [...]}`` (row format,
  answered with ``{"predictions": [...]}``) or ``{"inputs": ...}`` (columnar, answered
  with ``{"outputs": {...}}``).

Errors are ``{"error": "..."}`` with 400 (bad JSON, shape or type), 404 (unknown model or
version) or 413 (body over the limit). Requests that arrive together are predicted in one
batch; a new version folder is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import errno
import json
import logging
import re
import socket
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from tensorflow.core.framework import types_pb2

from textlstm import artifacts
from textlstm.config import saved_config
from textlstm.errors import ModelDirError, ServeError
from textlstm.fast_inference import FastTextModel, signature_outputs
from textlstm.predict_io import lone_surrogate
from textlstm.preflight import check_serve
from textlstm.runtime import tensorflow
from textlstm.vectorizer import read_vocabulary
from textlstm.verification import TOLERANCE, probe_texts

tf = tensorflow()
log = logging.getLogger(__name__)
SIGNATURE = "serving_default"
DEFAULT_MAX_BODY_BYTES = 1 << 20
# A fast-path batch of at least this many texts is split into two by length.
SPLIT_MIN_TEXTS = 8
# Batches predicted at the same time (each in a worker thread of its own).
CONCURRENT_BATCHES = 2
_PATH = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?P<action>/metadata|:predict)?$")


class RequestError(Exception):
    """A request the server answers with an HTTP error status and ``{"error": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Servable:
    """One loaded version folder."""

    version: int
    path: Path
    function: Any
    input_name: str
    output_names: list[str]
    signature_def: dict[str, Any]
    # The XLA fast path, raw texts -> the signature's outputs; None: the SavedModel
    # signature answers.
    fast: FastTextModel | None = None

    def run(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Predict a batch of texts (called in the worker thread)."""
        if self.fast is not None:
            return self.fast.outputs(texts)
        return self.run_signature(texts)

    def run_signature(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Predict with the SavedModel signature itself."""
        out = self.function(**{self.input_name: tf.constant(texts, dtype=tf.string)})
        return {key: value.numpy() for key, value in out.items()}


def _load(path: Path, version: int, max_batch: int = 0) -> Servable:
    """Load a version folder; with ``max_batch`` also build, check and warm up the XLA
    fast path for batches of up to that many texts."""
    artifacts.check_saved_model_file(path)
    loaded = tf.saved_model.load(str(path))
    if SIGNATURE not in loaded.signatures:
        raise ModelDirError(f"{path} has no {SIGNATURE} signature; expected an export written by textlstm export")
    function = loaded.signatures[SIGNATURE]
    inputs = function.structured_input_signature[1]
    if len(inputs) != 1:
        raise ModelDirError(f"{path} takes inputs {sorted(inputs)}; expected one string input")
    input_name, spec = next(iter(inputs.items()))
    outputs = function.structured_outputs

    def describe_tensor(name: str, tensor: Any) -> dict[str, Any]:
        dims = [{"size": str(-1 if d is None else d)} for d in tensor.shape.as_list()]
        dtype = types_pb2.DataType.Name(tensor.dtype.as_datatype_enum)  # DT_STRING, DT_FLOAT ...
        return {"dtype": dtype, "tensor_shape": {"dim": dims}, "name": name}

    signature_def = {
        "inputs": {input_name: describe_tensor(f"{SIGNATURE}_{input_name}:0", spec)},
        "outputs": {
            key: describe_tensor(f"StatefulPartitionedCall:{i}", t) for i, (key, t) in enumerate(outputs.items())
        },
        "method_name": "tensorflow/serving/predict",
    }
    # Keep `loaded` alive through the function's captured variables.
    function._textlstm_owner = loaded  # noqa: SLF001
    servable = Servable(version, path, function, input_name, sorted(outputs), signature_def)
    if max_batch > 0:
        _add_fast_path(servable, loaded, max_batch)
    return servable


def _add_fast_path(servable: Servable, loaded: Any, max_batch: int) -> None:
    """Serve through the XLA fast path when it can be rebuilt from the export and gives
    the signature's outputs on the `export --verify` probe texts; then compile it for every
    batch size the batcher can send (padded to `BATCH_SIZES`), before the version
    answers: no request waits for a compilation, and no new shape grows memory later."""
    assets = servable.path / artifacts.EXPORT_ASSETS_DIR
    try:
        metadata = artifacts.read_json(assets / artifacts.EXPORT_METADATA_FILE)
        labels = artifacts.read_json(assets / artifacts.LABELS_FILE)
        config = saved_config(metadata["config"])
        k = int(metadata["top_k"])
        thresholds = artifacts.export_thresholds(metadata, labels, str(assets))
    except Exception as exc:  # an older or foreign export: its signature answers
        log.info("no fast path for %s: %s", servable.path, exc)
        return
    fast = FastTextModel.from_export(servable.path, config, list(loaded.variables), len(labels))
    if fast is None:
        log.info("no fast path for %s: its model is not one the fast path reproduces", servable.path)
        return
    label_tensor = tf.constant(labels)
    threshold_tensor = tf.constant(thresholds, tf.float64) if thresholds is not None else None
    fast = fast.with_outputs(lambda p: signature_outputs(p, label_tensor, k, threshold_tensor))
    texts = probe_texts(read_vocabulary(assets / artifacts.VOCAB_FILE))
    if not _same_outputs(servable.run_signature(texts), fast.outputs(texts)):
        log.warning("the fast path of %s does not answer like its signature; serving the signature", servable.path)
        return
    started = time.time()
    sizes = fast.warm_up(max_batch)
    servable.fast = fast
    log.info(
        "compiled the fast path of version %d for batch sizes %s in %.1f s",
        servable.version,
        sizes,
        time.time() - started,
    )


def _same_outputs(want: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> bool:
    """Same output names and shapes; numbers within `TOLERANCE`, labels equal."""
    if sorted(want) != sorted(got):
        return False
    for key, value in want.items():
        other = got[key]
        if value.shape != other.shape or value.dtype != other.dtype:
            return False
        if value.dtype.kind == "f":
            if value.size and float(np.max(np.abs(value - other))) > TOLERANCE:
                return False
        elif not np.array_equal(value, other):
            return False
    return True


class Repository:
    """The version folders of an export directory, loaded as they appear."""

    def __init__(self, export_dir: Path, name: str, max_batch: int = 0) -> None:
        """``max_batch`` > 0: serve versions through the XLA fast path, compiled for
        batches of up to that many texts (see `_add_fast_path`)."""
        self.export_dir = export_dir
        self.name = name
        self.max_batch = max_batch
        # Replaced whole, never mutated, so request handlers can read it from the event
        # loop while the loader thread refreshes.
        self.versions: dict[int, Servable] = {}
        # version -> (folder mtime when it failed, why): retried once the folder changes,
        # e.g. when a copy that was still in progress completes.
        self.failed: dict[int, tuple[float, str]] = {}

    def scan(self) -> list[tuple[int, Path]] | None:
        """Integer version folders holding a saved_model.pb, lowest first; None when the
        export folder itself cannot be read (then nothing is unloaded)."""
        try:
            children = list(self.export_dir.iterdir())
        except OSError:
            return None
        found = []
        for child in children:
            if artifacts.is_version_name(child.name) and (child / artifacts.SAVED_MODEL_FILE).is_file():
                found.append((int(child.name), child))
        return sorted(found)

    def refresh(self) -> list[int]:
        """Load versions that appeared, forget those removed; return the new ones."""
        scanned = self.scan()
        if scanned is None:
            log.warning("cannot read %s; keeping the loaded versions", self.export_dir)
            return []
        present = dict(scanned)
        versions = {v: s for v, s in self.versions.items() if v in present}
        for gone in set(self.versions) - set(versions):
            log.info("version %d of %s disappeared; unloading it", gone, self.name)
        added = []
        for version, path in sorted(present.items()):
            if version in versions:
                continue
            mtime = _mtime(path)
            if version in self.failed and self.failed[version][0] == mtime:
                continue
            try:
                versions[version] = _load(path, version, self.max_batch)
                self.failed.pop(version, None)
                added.append(version)
                log.info("loaded %s version %d from %s", self.name, version, path)
            except Exception as exc:  # a broken folder must not take the others down
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self.failed[version] = (mtime, message)
                log.warning("cannot load %s: %s", path, message)
        self.versions = versions
        return added

    def get(self, version: str | None) -> Servable:
        """The requested version, or the highest one; RequestError 404 if absent."""
        versions = self.versions
        if version is None:
            if not versions:
                raise RequestError(404, f"Servable not found for request: Latest({self.name})")
            return versions[max(versions)]
        if not artifacts.is_version_name(version) or int(version) not in versions:
            raise RequestError(404, f"Servable not found for request: Specific({self.name}, {version})")
        return versions[int(version)]


def _mtime(path: Path) -> float:
    """The newest modification time in a version folder (its files and subfolders)."""
    try:
        return max([path.stat().st_mtime, *(p.stat().st_mtime for p in path.rglob("*"))])
    except OSError:
        return 0.0


class Batcher:
    """Gathers texts from requests that arrive together into one model call."""

    def __init__(self, max_batch: int, delay_seconds: float) -> None:
        self.max_batch = max_batch
        self.delay = delay_seconds
        self.queue: asyncio.Queue[tuple[Servable, list[str], asyncio.Future]] = asyncio.Queue()
        # Model calls in flight at once: a second batch is gathered and started while one
        # runs, since one call leaves part of the cores idle (on 2 cores, measured with
        # scripts/loadtest.py; see README).
        self.concurrency = CONCURRENT_BATCHES
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix="textlstm-predict"
        )

    async def predict(self, servable: Servable, texts: list[str]) -> dict[str, np.ndarray]:
        """Queue a request's texts and wait for its slice of the batch's outputs."""
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        await self.queue.put((servable, texts, future))
        return await future

    async def run(self) -> None:
        """Forever: take the first waiting request, add those already queued or arriving
        within the delay (same version, up to max_batch texts), predict them together."""
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.concurrency)
        running: set[asyncio.Task] = set()
        while True:
            await slots.acquire()
            first = await self.queue.get()
            group = [first]
            try:
                size = len(first[1])
                deadline = loop.time() + self.delay
                while size < self.max_batch:
                    try:
                        item = self.queue.get_nowait()
                    except asyncio.QueueEmpty:
                        timeout = deadline - loop.time()
                        if timeout <= 0:
                            break
                        try:
                            item = await asyncio.wait_for(self.queue.get(), timeout)
                        except asyncio.TimeoutError:
                            break
                    if item[0] is not first[0]:
                        await self._predict([item])  # another version: its own batch
                        continue
                    group.append(item)
                    size += len(item[1])
                task = asyncio.create_task(self._predict(group))
            except asyncio.CancelledError:
                slots.release()
                raise
            except Exception as exc:  # keep batching for the next requests whatever happened
                slots.release()
                log.exception("batch failed")
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            # The slot is free again when the batch is answered; keep a reference so the
            # task is not collected while it runs.
            running.add(task)
            task.add_done_callback(running.discard)
            task.add_done_callback(lambda _: slots.release())

    async def _run(self, servable: Servable, texts: list[str]) -> dict[str, np.ndarray]:
        """The outputs for ``texts``, in order. A large request is cut into model calls of
        at most max_batch texts. On the fast path a batch is split by length into halves
        predicted side by side: the LSTM runs as many steps as the batch's longest text,
        so the short half is done sooner and costs less than it would padded to the long
        one (on 2 cores; see README)."""
        loop = asyncio.get_running_loop()
        chunks: list[list[int]] = []
        for start in range(0, len(texts), self.max_batch):
            piece = list(range(start, min(start + self.max_batch, len(texts))))
            if servable.fast is not None and len(piece) >= SPLIT_MIN_TEXTS:
                piece.sort(key=lambda i: len(texts[i]))
                chunks += [piece[: len(piece) // 2], piece[len(piece) // 2 :]]
            else:
                chunks.append(piece)
        # At most `concurrency` calls of one request are queued at a time: a request of
        # thousands of texts would otherwise fill the executor's queue, and every request
        # arriving after it would wait for all of them.
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, len(chunks), self.concurrency):
            parts += await asyncio.gather(
                *(
                    loop.run_in_executor(self.executor, servable.run, [texts[i] for i in chunk])
                    for chunk in chunks[start : start + self.concurrency]
                )
            )
        where = np.argsort(np.concatenate(chunks), kind="stable")
        return {key: np.concatenate([part[key] for part in parts])[where] for key in parts[0]}

    async def _predict(self, group: list[tuple[Servable, list[str], asyncio.Future]]) -> None:
        servable = group[0][0]
        texts = [text for _, request_texts, _ in group for text in request_texts]
        log.debug("batch of %d texts from %d requests", len(texts), len(group))
        try:
            outputs = await self._run(servable, texts)
        except Exception as exc:  # hand the failure to every waiting request
            for _, _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for _, request_texts, future in group:
            end = start + len(request_texts)
            if not future.done():
                future.set_result({key: value[start:end] for key, value in outputs.items()})
            start = end


def _report_crash(task: asyncio.Task) -> None:
    """A background task must never end quietly: requests would then wait forever."""
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s stopped: %r", task.get_coro().__name__, task.exception())


def _jsonable(value: Any) -> Any:
    """A tensor's value (or a row of it) as JSON: strings decoded, numbers as numbers."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return [_jsonable(v) for v in value]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decompressed(raw: bytes, encoding: str, limit: int) -> bytes:
    """The request body after its Content-Encoding (none, gzip or deflate), at most
    ``limit`` bytes once decompressed (a small gzip body can inflate a thousandfold)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise RequestError(415, f"unsupported Content-Encoding {encoding!r}; expected gzip, deflate or none")
    # HTTP's "deflate" is a zlib stream, though some clients send raw deflate.
    attempts = [16 + zlib.MAX_WBITS] if encoding != "deflate" else [zlib.MAX_WBITS, -zlib.MAX_WBITS]
    for number, wbits in enumerate(attempts, 1):
        stream = zlib.decompressobj(wbits)
        try:
            body = stream.decompress(raw, min(limit + 1, sys.maxsize))
        except zlib.error as exc:
            if number < len(attempts):
                continue
            raise RequestError(
                400, f"cannot decompress the {encoding} request body ({exc}); expected {encoding} data"
            ) from exc
        if len(body) > limit:
            raise RequestError(
                413, f"request body over the limit of {limit} bytes once decompressed; expected a smaller request"
            )
        if not stream.eof:
            raise RequestError(400, f"the {encoding} request body ends early; expected a complete {encoding} stream")
        if stream.unused_data:
            raise RequestError(
                400, f"the {encoding} request body goes on after its stream; expected one {encoding} stream"
            )
        return body
    raise AssertionError("unreachable")  # pragma: no cover


def _text(value: Any, number: int, input_name: str) -> str:
    """One instance as a string: a JSON string, or TensorFlow Serving's ``{"b64": ...}``
    (base64 of the UTF-8 bytes)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise RequestError(
                400, f"instance {number}: its b64 value is not base64 of UTF-8 text ({exc}); expected UTF-8 text"
            ) from exc
    if isinstance(value, dict):
        raise RequestError(
            400,
            f"instance {number} is an object with keys {sorted(value)}; expected a string, "
            f'{{"{input_name}": string}} or {{"b64": base64 string}} (DT_STRING, shape [None])',
        )
    raise RequestError(
        400, f"expected every instance to be a string (DT_STRING, shape [None]); received a {type(value).__name__}"
    )


def _texts(body: Any, servable: Servable) -> tuple[list[str], bool]:
    """The texts of a predict request and whether it used the row ("instances") format."""
    if not isinstance(body, dict):
        raise RequestError(400, 'expected a JSON object with "instances" or "inputs"')
    signature = body.get("signature_name", SIGNATURE) or SIGNATURE
    if signature != SIGNATURE:
        raise RequestError(400, f'Serving signature name: "{signature}" not found in signature def')
    if ("instances" in body) == ("inputs" in body):
        raise RequestError(400, 'expected exactly one of "instances" (row format) or "inputs" (columnar format)')
    rows = "instances" in body
    values = body["instances"] if rows else body["inputs"]
    if rows and isinstance(values, list):
        values = [
            v[servable.input_name] if isinstance(v, dict) and set(v) == {servable.input_name} else v for v in values
        ]
    if not rows and isinstance(values, dict) and set(values) == {"b64"}:
        values = [values]  # one base64 string for the only input
    if not rows and isinstance(values, dict):
        if set(values) != {servable.input_name}:
            raise RequestError(400, f"expected the input {servable.input_name!r}; received {sorted(values)}")
        values = values[servable.input_name]
    if not rows and isinstance(values, (str, dict)):
        values = [values]  # one text, plain or {"b64": ...}
    if not isinstance(values, list) or not values:
        raise RequestError(400, "expected a non-empty list of strings (shape [None])")
    values = [_text(value, number, servable.input_name) for number, value in enumerate(values)]
    for number, value in enumerate(values):
        # A JSON "\ud800" escape decodes to a lone surrogate, which has no UTF-8 form: refused
        # here, it cannot fail the other requests batched with it.
        at = lone_surrogate(value)
        if at is not None:
            raise RequestError(
                400, f"instance {number} holds a lone surrogate (\\u{ord(value[at]):04x}); expected valid Unicode text"
            )
    return values, rows


def make_app(repository: Repository, batcher: Batcher, max_body_bytes: int) -> web.Application:
    """The aiohttp application serving one model name."""

    async def handle(request: web.Request) -> web.Response:
        try:
            return await _dispatch(request)
        except RequestError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        except web.HTTPRequestEntityTooLarge:
            return web.json_response(
                {"error": f"request body over the limit of {max_body_bytes} bytes; expected a smaller request"},
                status=413,
            )
        except ConnectionError:
            # The client went away mid-request: nobody is left to answer.
            log.info("a client closed its connection before its request was read")
            return web.json_response({"error": "connection closed"}, status=400)
        except Exception as exc:  # never let one request crash the server
            log.exception("request failed")
            return web.json_response({"error": f"internal error: {type(exc).__name__}: {exc}"}, status=500)

    async def _dispatch(request: web.Request) -> web.Response:
        match = _PATH.match(request.match_info["tail"])
        if match is None:
            raise RequestError(
                404, f"unknown path {request.path}; expected /v1/models/NAME[/versions/N][:predict|/metadata]"
            )
        if match["name"] != repository.name:
            raise RequestError(404, f"Servable not found for request: Latest({match['name']})")
        action = match["action"]
        if action == ":predict":
            if request.method != "POST":
                raise RequestError(405, "predict expects POST")
            servable = repository.get(match["version"])
            try:
                raw = await request.read()
            except RequestPayloadError as exc:
                detail = " ".join(str(exc).split())
                raise RequestError(400, f"cannot read the request body ({detail}); expected a complete body") from exc
            raw = _decompressed(raw, request.headers.get("Content-Encoding", ""), max_body_bytes)
            try:
                body = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise RequestError(400, f"request body is not valid UTF-8 (byte {exc.start}); expected JSON") from exc
            except json.JSONDecodeError as exc:
                raise RequestError(400, f"JSON Parse error: {exc.msg} at offset {exc.pos}") from exc
            except RecursionError as exc:
                raise RequestError(400, "JSON nested too deeply; expected a list of strings (shape [None])") from exc
            except ValueError as exc:  # an integer of more digits than Python converts
                raise RequestError(400, "JSON number too long; expected a list of strings (shape [None])") from exc
            texts, rows = _texts(body, servable)
            outputs = await batcher.predict(servable, texts)
            if rows:
                names = servable.output_names
                predictions = [{k: _jsonable(outputs[k][i]) for k in names} for i in range(len(texts))]
                return web.json_response({"predictions": predictions})
            return web.json_response({"outputs": {k: _jsonable(v) for k, v in outputs.items()}})
        if request.method != "GET":
            raise RequestError(405, "expected GET")
        if action == "/metadata":
            servable = repository.get(match["version"])
            return web.json_response(
                {
                    "model_spec": {"name": repository.name, "signature_name": "", "version": str(servable.version)},
                    "metadata": {"signature_def": {"signature_def": {SIGNATURE: servable.signature_def}}},
                }
            )
        versions = [repository.get(match["version"])] if match["version"] else list(repository.versions.values())
        if not versions:
            raise RequestError(404, f"Servable not found for request: Latest({repository.name})")
        return web.json_response(
            {
                "model_version_status": [
                    {
                        "version": str(s.version),
                        "state": "AVAILABLE",
                        "status": {"error_code": "OK", "error_message": ""},
                    }
                    for s in sorted(versions, key=lambda s: -s.version)
                ]
            }
        )

    async def unknown(request: web.Request) -> web.Response:
        return web.json_response(
            {"error": f"unknown path {request.path}; expected /v1/models/NAME[/versions/N][:predict|/metadata]"},
            status=404,
        )

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_route("*", "/v1/models/{tail:.*}", handle)
    app.router.add_route("*", "/{tail:.*}", unknown)
    return app


def serve(
    export_dir: str | Path,
    name: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8501,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_batch: int = 64,
    batch_delay_ms: float = 2.0,
    poll_seconds: float = 2.0,
) -> None:
    """Serve the export folder until interrupted (see the module docstring).

    ``name`` defaults to the name the highest version was exported with (see
    `artifacts.serving_target`). Requests arriving within ``batch_delay_ms`` of
    each other share one model call of up to ``max_batch`` texts. The folder is scanned
    every ``poll_seconds`` for new version folders, which are loaded and become the
    default (highest) version without a restart.
    """
    export_dir, name = check_serve(export_dir, name, max_batch, batch_delay_ms, poll_seconds)
    # A taken port fails before the seconds spent loading and compiling the model.
    _check_port(host, port)
    repository = Repository(export_dir, name, max_batch)
    repository.refresh()
    if not repository.versions:
        problems = "; ".join(f"{v}: {m}" for v, (_, m) in repository.failed.items())
        raise ServeError(
            f"{export_dir} holds no loadable SavedModel version; expected folders like {export_dir}/1 written by "
            f"textlstm export{' (' + problems + ')' if problems else ''}"
        )
    asyncio.run(_main(repository, host, port, max_body_bytes, max_batch, batch_delay_ms / 1000.0, poll_seconds))


def _check_port(host: str, port: int) -> None:
    """Raise ServeError when ``host:port`` cannot be listened on (the server binds it again
    later, with the same error handling, should it be taken meanwhile)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServeError(
                    f"port {port} on {host} is in use; expected a free port (choose one with --port)"
                ) from None
            raise ServeError(
                f"cannot listen on {host}:{port} ({exc.strerror}); expected an address of this machine and a free port"
            ) from None


async def _main(
    repository: Repository, host: str, port: int, max_body_bytes: int, max_batch: int, delay: float, poll: float
) -> None:
    batcher = Batcher(max_batch, delay)
    # Bodies are decompressed by `_decompressed`, which answers a bad or unknown
    # Content-Encoding with a JSON error and bounds the decompressed size.
    runner = web.AppRunner(make_app(repository, batcher, max_body_bytes), access_log=None, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(f"port {port} on {host} is in use; expected a free port (choose one with --port)") from exc
        raise ServeError(
            f"cannot listen on {host}:{port} ({exc.strerror}); expected an address of this machine and a free port"
        ) from exc
    log.info(
        "serving %s versions %s on http://%s:%d/v1/models/%s",
        repository.name,
        sorted(repository.versions),
        host,
        port,
        repository.name,
    )
    tasks = [asyncio.create_task(batcher.run()), asyncio.create_task(_watch(repository, poll))]
    for task in tasks:
        task.add_done_callback(_report_crash)
    try:
        await asyncio.Event().wait()
    finally:
        for task in tasks:
            task.cancel()
        await runner.cleanup()
        batcher.executor.shutdown(wait=False)


async def _watch(repository: Repository, poll: float) -> None:
    """Load new version folders as they appear, in a thread of their own: loading takes
    seconds and must not hold up predictions."""
    loop = asyncio.get_running_loop()
    loader = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="textlstm-loader")
    try:
        while True:
            await asyncio.sleep(poll)
            started = time.time()
            try:
                added = await loop.run_in_executor(loader, repository.refresh)
            except Exception:  # the next poll tries again
                log.exception("checking %s for new versions failed", repository.export_dir)
                continue
            if added:
                log.info("picked up version(s) %s in %.1f s", added, time.time() - started)
    finally:
        loader.shutdown(wait=False)
