"""Training under `tf.distribute`: which strategy a run uses, which part of a cluster this
process is, and what the chief shares with the other workers.

A multi-worker run is planned by the chief alone (data summary, vocabulary, fine-tuning
and pretrained vectors) and shared with the workers over the strategy's own collectives:
the plan as JSON, the initial variables as one array. Workers therefore need the data, but
neither the run directory, the base model nor a vectors file.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import logging
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from textlstm.config import STRATEGIES
from textlstm.errors import ConfigError, DistributedError, describe

log = logging.getLogger(__name__)

TF_CONFIG = "TF_CONFIG"
# A dead peer is reported by the coordination service after this long without heartbeats.
HEARTBEAT_SECONDS = 15


@dataclass
class TaskSpec:
    """This process's place in the ``TF_CONFIG`` cluster."""

    cluster: dict[str, list[str]]
    task_type: str
    index: int

    @property
    def workers(self) -> int:
        """The number of training tasks (chief and workers)."""
        return sum(len(self.cluster.get(job, [])) for job in ("chief", "worker"))

    @property
    def is_chief(self) -> bool:
        """The chief writes the run: the ``chief`` task, or worker 0 when there is none."""
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.index == 0

    @property
    def rank(self) -> int:
        """This task's position among the training tasks, chief first."""
        if self.task_type == "chief":
            return 0
        return len(self.cluster.get("chief", [])) + self.index

    @property
    def name(self) -> str:
        """``chief`` or ``worker N``, for messages."""
        return "chief" if self.task_type == "chief" else f"{self.task_type} {self.index}"


def read_tf_config(environ: dict[str, str] | None = None) -> TaskSpec | None:
    """The ``TF_CONFIG`` of this process, checked; None when the variable is not set.

    Raises:
        ConfigError: when it is not JSON, has no ``cluster`` of ``chief``/``worker``
            addresses, or its ``task`` does not name one of them.
    """
    raw = (os.environ if environ is None else environ).get(TF_CONFIG)
    if raw is None or not raw.strip():
        return None
    expected = '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}'
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{TF_CONFIG} is not valid JSON ({exc.msg}); {describe(expected, raw[:200])}") from None
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    task = spec.get("task") if isinstance(spec, dict) else None
    if not isinstance(cluster, dict) or not any(cluster.get(job) for job in ("chief", "worker")):
        raise ConfigError(f"{TF_CONFIG} has no cluster of chief/worker addresses; {describe(expected, raw[:200])}")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise ConfigError(
                f"{TF_CONFIG} cluster job {job!r} must list host:port addresses; {describe(expected, addresses)}"
            )
    if not isinstance(task, dict) or not isinstance(task.get("index", 0), int):
        raise ConfigError(f"{TF_CONFIG} has no task with a type and an integer index; {describe(expected, task)}")
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type not in ("chief", "worker") or not 0 <= index < len(cluster.get(task_type, [])):
        raise ConfigError(
            f"{TF_CONFIG} task {task_type} {index} is not a training task of its cluster; "
            f"{describe('chief 0 or worker 0..' + str(len(cluster.get('worker', [])) - 1), task)}"
        )
    return TaskSpec(cluster={k: list(v) for k, v in cluster.items()}, task_type=task_type, index=index)


@dataclass
class Cluster:
    """The strategy of a run and this process's role in it."""

    strategy: Any
    # default, mirrored or multi-worker: what the requested strategy resolved to here.
    kind: str
    replicas: int
    task: TaskSpec | None = None
    # Set once the chief has shared its plan: a later failure no longer needs telling.
    shared: bool = False

    @property
    def workers(self) -> int:
        """Processes taking part (1 unless multi-worker)."""
        return self.task.workers if self.task is not None else 1

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run directory."""
        return self.task is None or self.task.is_chief

    @property
    def rank(self) -> int:
        """This process's position among the workers (0 for the chief)."""
        return self.task.rank if self.task is not None else 0

    def gather(self, value: int) -> list[int]:
        """Every worker's ``value``, in rank order."""
        if self.workers == 1:
            return [value]
        mine = np.zeros(self.workers, np.int64)
        mine[self.rank] = value
        return [int(v) for v in self._sum(mine, contribute=True)]

    def scope(self) -> Any:
        """The strategy's scope: models, optimizers and metrics are built inside it."""
        return self.strategy.scope()

    def share(self, value: Any) -> Any:
        """The chief's ``value`` (anything JSON can hold), on every worker; the value
        passed by the other workers is ignored."""
        if self.workers == 1:
            return value
        payload = json.dumps(value).encode() if self.is_chief else b""
        size = int(self._sum(np.array([len(payload)], np.int64), contribute=self.is_chief)[0])
        mine = np.frombuffer(payload, np.uint8) if self.is_chief else np.zeros(size, np.uint8)
        data = self._sum(mine.astype(np.int32), contribute=self.is_chief).astype(np.uint8)
        return json.loads(data.tobytes().decode())

    def sync_variables(self, variables: Sequence[Any]) -> None:
        """Give every worker the chief's values of ``variables``.

        Variables start equal on all workers (the strategy broadcasts initial values), but
        what is assigned afterwards (pretrained vectors, a base model's weights, a resumed
        checkpoint) is assigned on the chief only.
        """
        if self.workers == 1 or not variables:
            return
        # One collective for all of them: float64 holds float32 values and step counters exactly.
        flat = np.concatenate([np.asarray(v.numpy(), np.float64).ravel() for v in variables])
        flat = self._sum(flat, contribute=self.is_chief)
        offset = 0
        for variable in variables:
            size = int(np.prod(variable.shape))
            value = flat[offset : offset + size].reshape(tuple(variable.shape))
            variable.assign(value.astype(variable.dtype.name if hasattr(variable.dtype, "name") else variable.dtype))
            offset += size

    def _sum(self, array: np.ndarray, contribute: bool) -> np.ndarray:
        """The sum over workers of ``array`` (zeros where ``contribute`` is false); each
        worker's first local replica contributes."""
        tf = _tf()
        zeros = np.zeros_like(array)
        local = self.replicas // self.workers

        def value(context: Any) -> Any:
            first = context.replica_id_in_sync_group % local == 0
            return tf.constant(array if contribute and first else zeros)

        try:
            values = self.strategy.experimental_distribute_values_from_function(value)
            return self.strategy.reduce("SUM", values, axis=None).numpy()
        except tf.errors.OpError as exc:
            raise lost_peers(exc) from None


def _tf() -> Any:
    from textlstm.runtime import tensorflow

    return tensorflow()


def lost_peers(exc: BaseException) -> DistributedError:
    """A one-line DistributedError for a collective that failed because a peer is gone."""
    text = str(getattr(exc, "message", exc))
    _, unhealthy, tail = text.partition("unhealthy")
    tasks = sorted(set(re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", tail))) if unhealthy else []
    if tasks:
        cause = (
            ", ".join(f"{job} {index}" for job, index in tasks)
            + f" stopped responding (no heartbeat for {HEARTBEAT_SECONDS} s)"
        )
    else:
        # Graph errors lead with the Python stack of the op; TensorFlow's reason is last.
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("[[")]
        cause = (lines[-1] if lines else type(exc).__name__)[:300]
    return DistributedError(
        f"distributed training stopped: {cause}; expected every task of {TF_CONFIG} to keep running until the end"
    )


def connect(strategy: str, worker_timeout: float, task: TaskSpec | None = None) -> Cluster:
    """Create the strategy ``strategy`` names (see `STRATEGIES`) and return this process's
    Cluster.

    Must run before any other TensorFlow operation when the strategy is multi-worker:
    `tf.distribute.MultiWorkerMirroredStrategy` configures the runtime it starts.

    ``auto`` is `mirrored` with several GPUs and `default` otherwise; `mirrored` without
    a GPU falls back to `default` with a notice. ``multi-worker`` reads ``TF_CONFIG``
    (or ``task``); it waits at most ``worker_timeout`` seconds for all workers to connect,
    then exits the process with an error: TensorFlow's wait cannot be interrupted.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown training.strategy; {describe(f'one of {list(STRATEGIES)}', strategy)}")
    if strategy == "multi-worker":
        task = task or read_tf_config()
        if task is None:
            raise ConfigError(
                f"--strategy multi-worker reads the cluster from the {TF_CONFIG} environment variable; "
                f"expected it set on every worker (see README, Training on several GPUs or machines); received none"
            )
        return _connect_workers(task, worker_timeout)
    tf = _tf()
    gpus = tf.config.list_logical_devices("GPU")
    if strategy == "auto":
        strategy = "mirrored" if len(gpus) > 1 else "default"
    if strategy == "mirrored" and not gpus:
        log.warning("--strategy mirrored: no GPU is visible; training with the default strategy on the CPU")
        strategy = "default"
    if strategy == "mirrored":
        mirrored = tf.distribute.MirroredStrategy()
        log.info("MirroredStrategy over %d GPU(s)", mirrored.num_replicas_in_sync)
        return Cluster(strategy=mirrored, kind="mirrored", replicas=mirrored.num_replicas_in_sync)
    return Cluster(strategy=tf.distribute.get_strategy(), kind="default", replicas=1)


def _connect_workers(task: TaskSpec, worker_timeout: float) -> Cluster:
    tf = _tf()
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    jobs = [job for job in ("chief", "worker") if task.cluster.get(job)]
    leader = f"/job:{jobs[0]}/replica:0/task:0"
    # The strategy would configure the coordination service itself, with no bound on how
    # long a dead peer goes unnoticed; configured here, a missing heartbeat aborts the
    # collectives of the survivors.
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=leader,
        heartbeat_timeout_in_ms=HEARTBEAT_SECONDS * 1000,
        coordinated_jobs=[
            coordination_config_pb2.CoordinatedJob(name=job, num_tasks=len(task.cluster[job])) for job in jobs
        ],
    )
    log.info("%s of %d: connecting to %s", task.name, task.workers, json.dumps(task.cluster))
    _rendezvous(task, worker_timeout)
    # TensorFlow waits for its peers in C++ holding the GIL, so no Python timer can end that
    # wait. The rendezvous has seen every peer alive; should one die in the moment before
    # it connects, faulthandler's C thread still ends the process (with a stack dump).
    faulthandler.dump_traceback_later(worker_timeout + 60, exit=True)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=tf.distribute.cluster_resolver.SimpleClusterResolver(
                tf.train.ClusterSpec(task.cluster), task_type=task.task_type, task_id=task.index, rpc_layer="grpc"
            )
        )
        cluster = Cluster(strategy=strategy, kind="multi-worker", replicas=strategy.num_replicas_in_sync, task=task)
        cluster.share(None)  # returns once every worker has joined
    finally:
        faulthandler.cancel_dump_traceback_later()
    log.info("%s: all %d workers connected, %d replicas", task.name, task.workers, cluster.replicas)
    return cluster


def _rendezvous(task: TaskSpec, timeout: float) -> None:
    """Return once the address of every other task accepts connections; raise a
    DistributedError after ``timeout`` seconds.

    Each task listens on its own address meanwhile, so that the others see it before its
    TensorFlow server starts; a task that has gone on is seen through that server.
    """
    own = task.cluster[task.task_type][task.index]
    port = int(own.rsplit(":", 1)[1])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", port))
        listener.listen(64)
    except OSError as exc:
        listener.close()
        raise DistributedError(
            f"{task.name} cannot listen on port {port} of its {TF_CONFIG} address {own} ({exc.strerror}); "
            "expected a free port on this machine"
        ) from None
    others = [
        address
        for job in ("chief", "worker")
        for index, address in enumerate(task.cluster.get(job, []))
        if (job, index) != (task.task_type, task.index)
    ]
    deadline = time.monotonic() + timeout
    try:
        while others:
            for address in list(others):
                host, _, peer_port = address.rpartition(":")
                with contextlib.suppress(OSError):
                    socket.create_connection((host, int(peer_port)), timeout=1).close()
                    others.remove(address)
            if others and time.monotonic() > deadline:
                raise DistributedError(
                    f"{task.name} could not reach {', '.join(others)} of {TF_CONFIG} within {timeout:g} s; "
                    "expected every worker started with the same cluster (raise training.worker_timeout to wait longer)"
                )
            if others:
                time.sleep(0.2)
    finally:
        listener.close()


def worker_dir(output_dir: str | Path, task: TaskSpec) -> Path:
    """Where a non-chief worker writes its copy of the run: a hidden sibling of the run
    directory, removed when the run ends."""
    output_dir = Path(output_dir)
    return output_dir.parent / f".{output_dir.name}.{task.task_type}-{task.index}"


def discard_worker_dir(path: Path) -> None:
    """Remove a worker's copy of the run."""
    shutil.rmtree(path, ignore_errors=True)


def mixed_precision_policy(enabled: bool) -> str | None:
    """The Keras dtype policy `--mixed-precision` asks for: ``mixed_float16`` when a GPU is
    visible, ``mixed_bfloat16`` on CPUs; None when not enabled."""
    if not enabled:
        return None
    return "mixed_float16" if _tf().config.list_logical_devices("GPU") else "mixed_bfloat16"


@contextlib.contextmanager
def dtype_policy(policy: str | None) -> Iterator[None]:
    """Build layers under the Keras dtype ``policy`` (None: leave the current one)."""
    if policy is None:
        yield
        return
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def patch_keras_for_workers(model: Any, cluster: Cluster) -> None:
    """Work around two Keras 3.15 defects that stop `fit` under MultiWorkerMirroredStrategy
    (keras-team/keras#20585): `fit` reduces the first batch and each step's logs with
    ``strategy.reduce`` calls that fail on tuples and on scalars. Only the model trained
    by a multi-worker run is touched."""
    if cluster.workers == 1:
        return
    import types

    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    tf = _tf()
    strategy = cluster.strategy

    def first_replica(value: Any) -> Any:
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def symbolic_build(self: Any, iterator: Any = None, data_batch: Any = None) -> None:
        # Keras needs one batch's shapes to build the metrics; any replica's batch will do.
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tree.map_structure(first_replica, next(batches))
                break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = types.MethodType(symbolic_build, model)
    if getattr(trainer.reduce_per_replica, "_textlstm", False):
        return
    original = trainer.reduce_per_replica

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        # Keras averages each step's logs with axis=0, which fails on scalars.
        if trainer._collective_all_reduce_multi_worker(strategy) and reduction in ("auto", "mean"):
            return tree.map_structure(
                lambda v: (
                    strategy.reduce("MEAN", v, axis=None) if isinstance(v, tf.distribute.DistributedValues) else v
                ),
                values,
            )
        return original(values, strategy, reduction)

    reduce_per_replica._textlstm = True  # type: ignore[attr-defined]
    trainer.reduce_per_replica = reduce_per_replica
