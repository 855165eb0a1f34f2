"""`train --strategy` and `--mixed-precision`.

In-process checks run in the default suite. The multi-worker runs start real worker
processes on 127.0.0.1 and train on a slice of SST-2 from ../shared/data; they take a few
minutes and are opt-in: ``python -m pytest -m distributed`` (CI runs them).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

from tests.conftest import SHARED_DATA, TINY_OVERRIDES

SST2 = SHARED_DATA / "sst2"
# Bounds on the multi-process runs: each phase ends long before, a hang fails the test.
RUN_TIMEOUT = 420
FAILURE_BOUND = 120


def _tiny(*extra: str) -> list[str]:
    return [arg for item in (*TINY_OVERRIDES, *extra) for arg in ("--set", item)]


def _manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def test_mirrored_without_gpu_falls_back_with_a_notice(cli, corpus_tar: Path, tmp_path: Path) -> None:
    from textlstm.cli import main

    out = tmp_path / "run"
    args = ["train", "--data", str(corpus_tar), "--output-dir", str(out), "--strategy", "mirrored", *_tiny()]
    result = cli.invoke(main, [*args, "--epochs", "1"])
    assert result.exit_code == 0, result.stderr
    notices = [line for line in result.stderr.splitlines() if "no GPU is visible" in line]
    assert len(notices) == 1 and "default strategy" in notices[0]
    assert _manifest(out)["distribution"] == {
        "strategy": "default",
        "replicas": 1,
        "workers": 1,
        "global_batch_size": 16,
        "dtype_policy": None,
        "sharding": None,
    }
    assert json.loads((out / "config.json").read_text())["training"]["strategy"] == "mirrored"


def test_mixed_precision_trains_in_bfloat16_and_saves_a_float32_model(cli, corpus_tar: Path, tmp_path: Path) -> None:
    import keras
    import numpy as np

    import textlstm
    from textlstm.cli import main

    out = tmp_path / "run"
    args = ["train", "--data", str(corpus_tar), "--output-dir", str(out), "--mixed-precision", *_tiny()]
    result = cli.invoke(main, [*args, "--set", "training.learning_rate=0.02"])
    assert result.exit_code == 0, result.stderr
    assert _manifest(out)["distribution"]["dtype_policy"] == "mixed_bfloat16"
    assert json.loads(result.stdout)["validation"]["accuracy"] >= 0.8
    classifier = keras.saving.load_model(out / "model.keras").get_layer("classifier")
    assert {layer.dtype_policy.name for layer in classifier.layers} == {"float32"}
    rows = textlstm.predict(out, ["great wonderful superb", "awful terrible boring"])
    assert [row["label"] for row in rows] == ["pos", "neg"]
    assert all(abs(sum(row["probabilities"].values()) - 1) < 1e-5 for row in rows)
    assert np.isfinite([row["score"] for row in rows]).all()


@pytest.mark.parametrize(
    ("tf_config", "message"),
    [
        (None, "reads the cluster from the TF_CONFIG environment variable"),
        ("{not json", "TF_CONFIG is not valid JSON"),
        ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}', "task worker 3"),
        ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "no cluster of chief/worker"),
    ],
)
def test_multi_worker_needs_a_valid_tf_config(
    cli, corpus_tar: Path, tmp_path: Path, tf_config: str | None, message: str
) -> None:
    from textlstm.cli import main

    args = ["train", "--data", str(corpus_tar), "--output-dir", str(tmp_path / "r"), "--strategy", "multi-worker"]
    result = cli.invoke(main, args, env={"TF_CONFIG": tf_config})
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "r").exists()


def test_a_folder_corpus_divides_into_disjoint_file_shards(corpus_dir: Path) -> None:
    from textlstm.file_sources import ReadOptions
    from textlstm.source_spec import open_source
    from textlstm.sources import FileShard

    source = open_source(str(corpus_dir), ReadOptions())
    everything = [key for key, _, _ in source.examples("train")]
    assert source.file_count("train") == len(everything) == 200
    shards = [[key for key, _, _ in FileShard(source, i, 3).examples("train")] for i in range(3)]
    assert sorted(k for shard in shards for k in shard) == sorted(everything)
    assert sorted(len(shard) for shard in shards) == [66, 67, 67]
    assert FileShard(source, 1, 3).label_names() == source.label_names()


# --- several processes on loopback ---------------------------------------------------------


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Workers:
    """Worker processes of one multi-worker `textlstm train`, killed when the test ends."""

    def __init__(self, args: list[str], workers: int, logs: Path, cwd: Path) -> None:
        cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(workers)]}
        self.logs = logs
        self.processes: list[subprocess.Popen] = []
        self._files: list[IO[bytes]] = []
        for index in range(workers):
            env = {
                **os.environ,
                "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            }
            out, err = open(logs / f"w{index}.out", "wb"), open(logs / f"w{index}.err", "wb")
            self._files += [out, err]
            command = [sys.executable, "-m", "textlstm", "train", *args]
            self.processes.append(subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=cwd))

    def wait(self, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        return [p.wait(timeout=max(deadline - time.monotonic(), 1)) for p in self.processes]

    def stdout(self, index: int) -> str:
        return (self.logs / f"w{index}.out").read_text()

    def stderr(self, index: int) -> str:
        return (self.logs / f"w{index}.err").read_text(errors="replace")

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for handle in self._files:
            handle.close()


@pytest.fixture()
def workers(tmp_path: Path):
    """Start worker processes with ``workers(args, n)``; all are killed at the end."""
    started: list[Workers] = []

    def start(args: list[str], n: int = 2, name: str = "logs") -> Workers:
        logs = tmp_path / f"{name}-{len(started)}"
        logs.mkdir()
        group = Workers(args, n, logs, tmp_path)
        started.append(group)
        return group

    yield start
    for group in started:
        group.close()


@pytest.fixture(scope="module")
def sst2_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 6,000 SST-2 training phrases."""
    if not (SST2 / "train.tsv").is_file():
        pytest.skip(f"SST-2 not found at {SST2}")
    lines = (SST2 / "train.tsv").read_text(encoding="utf-8").splitlines()[:6001]
    path = tmp_path_factory.mktemp("sst2") / "train.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _sst2_args(data: Path, out: Path, epochs: int, batch_size: int, *sets: str) -> list[str]:
    return [
        "--data", str(data), "--text-column", "sentence", "--label-column", "label", "--output-dir", str(out),
        "--epochs", str(epochs), "--set", f"training.batch_size={batch_size}", "--set", "training.learning_rate=0.003",
        "--set", "training.min_epoch_steps=0",
        *[arg for item in sets for arg in ("--set", item)],
    ]  # fmt: skip


# The equivalence below is checked on the plain BiLSTM. With the default n-gram ensemble
# the two sides differed by 1.26 points (two workers 78.56 %, one process 77.29 %): at
# this test's learning rate of 0.003 the n-gram table steps 50 times that, and the few
# partial batches that DATA sharding splits unevenly move it more than they move the LSTM.
# The other multi-worker tests train the default ensemble.
PLAIN_BILSTM = "model.ngram_order=0"


def _dev_accuracy(run: Path) -> float:
    command = [sys.executable, "-m", "textlstm", "evaluate", str(run), "--data", str(SST2 / "dev.tsv")]
    command += ["--text-column", "sentence", "--label-column", "label", "-q"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["examples"] == 872
    return report["accuracy"]


@pytest.mark.distributed
def test_two_workers_train_like_one_process_with_the_same_global_batch(
    workers, sst2_slice: Path, tmp_path: Path
) -> None:
    out = tmp_path / "two"
    args = _sst2_args(sst2_slice, out, 3, 32, PLAIN_BILSTM)
    group = workers([*args, "--strategy", "multi-worker", "-q"])
    assert group.wait(RUN_TIMEOUT) == [0, 0], group.stderr(0)[-3000:] + group.stderr(1)[-3000:]
    # Only the chief wrote the run; the worker's copy is gone.
    names = {p.name for p in out.iterdir()}
    assert {"model.keras", "vocab.txt", "labels.json", "config.json", "metrics.json", "manifest.json"} <= names
    assert {"model-best", "model-last"} <= names and "checkpoint" not in names
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".two")] == []
    manifest = _manifest(out)
    assert manifest["distribution"] == {
        "strategy": "multi-worker",
        "replicas": 2,
        "workers": 2,
        "global_batch_size": 64,
        "dtype_policy": None,
        "sharding": "data",
    }
    assert json.loads(group.stdout(0))["epochs_run"] == 3

    single = tmp_path / "one"
    command = [sys.executable, "-m", "textlstm", "train", *_sst2_args(sst2_slice, single, 3, 64, PLAIN_BILSTM), "-q"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    two, one = _dev_accuracy(out), _dev_accuracy(single)
    print(f"SST-2 dev accuracy: two workers {two:.4f}, one process {one:.4f}")
    # 13 of 872 sentences. DATA sharding splits a few partial batches unevenly, so the two
    # runs are alike, not equal: within 0.005 on the hold-out drawn by key; on the one drawn
    # by text, which holds out another 10 % of the same 6,000 phrases, 0.0069 apart with 64
    # LSTM units (two workers 78.67 %, one process 77.98 %) and 0.0081 with 32 (78.33 %,
    # 77.52 %).
    assert abs(two - one) <= 0.015, (two, one)
    assert two > 0.7, two  # it learned something: the comparison is not between two chance models

    export = subprocess.run(
        [sys.executable, "-m", "textlstm", "export", str(out), "--export-dir", str(tmp_path / "exp"), "--verify", "-q"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert export.returncode == 0, export.stderr[-2000:]
    assert (tmp_path / "exp" / "1" / "saved_model.pb").is_file()


@pytest.mark.distributed
def test_killed_worker_stops_the_chief_with_an_error_and_the_run_resumes(
    workers, sst2_slice: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    group = workers([*_sst2_args(sst2_slice, out, epochs=3, batch_size=32), "--strategy", "multi-worker"])
    deadline = time.monotonic() + RUN_TIMEOUT
    while "epoch 1/3:" not in group.stderr(0):
        assert group.processes[0].poll() is None, group.stderr(0)[-3000:]
        assert time.monotonic() < deadline, "the chief never finished epoch 1"
        time.sleep(0.2)
    group.processes[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    code = group.processes[0].wait(timeout=FAILURE_BOUND + 60)
    elapsed = time.monotonic() - killed
    last = group.stderr(0).strip().splitlines()[-1]
    assert code == 2, group.stderr(0)[-3000:]
    assert last.startswith("error: distributed training stopped: worker 1 stopped responding"), last
    assert "Traceback" not in group.stderr(0)
    print(f"the chief stopped {elapsed:.1f} s after worker 1 was killed")
    assert elapsed < FAILURE_BOUND, elapsed
    # The chief's run stays resumable from its last completed epoch.
    assert (out / "checkpoint").is_dir() and not (out / "manifest.json").exists()

    resumed = workers(["--resume", str(out), "-q"], name="resume")
    assert resumed.wait(RUN_TIMEOUT) == [0, 0], resumed.stderr(0)[-3000:] + resumed.stderr(1)[-3000:]
    manifest = _manifest(out)
    assert manifest["epochs_run"] == 3 and manifest["resumed"][0]["after_epoch"] >= 1
    assert manifest["distribution"]["workers"] == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".run.")] == []


@pytest.mark.distributed
def test_a_worker_whose_peers_never_come_gives_up_in_time(workers, corpus_tar: Path, tmp_path: Path) -> None:
    args = ["--data", str(corpus_tar), "--output-dir", str(tmp_path / "r"), "--strategy", "multi-worker"]
    group = workers([*args, "--set", "training.worker_timeout=10"])
    group.processes[1].kill()  # worker 1 never gets going
    started = time.monotonic()
    assert group.processes[0].wait(timeout=FAILURE_BOUND) == 2
    assert time.monotonic() - started < FAILURE_BOUND
    last = group.stderr(0).strip().splitlines()[-1]
    assert last.startswith("error: worker 0 could not reach 127.0.0.1:"), last
    assert "of TF_CONFIG within 10 s" in last and "Traceback" not in group.stderr(0)
    assert not (tmp_path / "r").exists()


@pytest.mark.distributed
def test_two_workers_shard_a_folder_corpus_by_file(workers, corpus_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["--data", str(corpus_dir), "--output-dir", str(out), "--strategy", "multi-worker"]
    args += _tiny("training.epochs=10")  # half the steps of one process an epoch
    group = workers(args)
    assert group.wait(RUN_TIMEOUT) == [0, 0], group.stderr(0)[-3000:] + group.stderr(1)[-3000:]
    assert _manifest(out)["distribution"]["sharding"] == "file"
    log = group.stderr(0)
    assert "sharding by file: each of the 2 workers reads its own share of the 200 files" in log
    counts = json.loads(log.split("batches of each worker's files: ")[1].split(";")[0])
    assert len(counts) == 2 and min(counts) >= 5
    assert json.loads(group.stdout(0))["validation"]["accuracy"] >= 0.8
