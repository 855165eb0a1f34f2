"""Checks of a command's arguments that need no TensorFlow, run before it is imported
(and `check_batch_size`, the Python API's check of an argument the CLI types with click).

Importing TensorFlow takes seconds; a mistyped path or an output that would be replaced
should be refused at once. Each check here is one the command's library function runs
again (they are cheap and read nothing large), so the two cannot disagree: the CLI calls
these first, the Python API relies on the library's own.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any, Sequence

from textlstm import artifacts
from textlstm.config import Config
from textlstm.errors import InputError, ServeError, describe
from textlstm.predict_io import check_input_file
from textlstm.report import check_report_dir
from textlstm.source_spec import check_source_spec


def check_train(data: str, output_dir: str | Path, overwrite: bool, config: Config) -> None:
    """`textlstm train`: the data source names something; the output directory may be
    written. Not for a multi-worker run: only the chief reads ``data`` and writes
    ``output_dir``, and it may have begun writing before another worker starts."""
    if config.training.strategy == "multi-worker":
        return
    check_source_spec(data)
    artifacts.prepare_output_dir(output_dir, overwrite)


def check_evaluate(model_dir: str | Path, data: str, output: str | Path | None, report_dir: str | Path | None) -> None:
    """`textlstm evaluate`: a complete run directory, a data source, new output paths."""
    if output is not None:
        artifacts.check_new_file(output, "--output")
    if report_dir is not None:
        check_report_dir(report_dir)
    artifacts.check_run_dir(model_dir)
    check_source_spec(data)


def check_predict(
    model: str | None, texts: Sequence[str], input_path: str | Path | None, output: str | Path | None
) -> None:
    """`textlstm predict`: a model (or a first text, for the bundled one), the input file
    and a new output file."""
    path, _ = artifacts.resolve_model_argument(model, texts, reading_input=input_path is not None)
    if input_path is not None:
        check_input_file(Path(input_path))
    if output is not None:
        artifacts.check_new_file(output, "--output")
    artifacts.model_kind(path)


def check_export(model_dir: str | Path) -> None:
    """`textlstm export`: a complete run directory."""
    artifacts.check_run_dir(model_dir)


# The largest --max-batch: the server compiles the fast path for every batch bucket up to
# it before answering (1, 2, ... 256, then multiples of 256), about a second each.
MAX_SERVE_BATCH = 1024


def check_serve(
    export_dir: str | Path,
    name: str | None,
    max_batch: int = 64,
    batch_delay_ms: float = 2.0,
    poll_seconds: float = 2.0,
) -> tuple[Path, str]:
    """`textlstm serve`: an export folder, a model name fit for URLs and finite timings
    (a NaN poll interval would poll without pause); return the folder and the name."""
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or not 1 <= max_batch <= MAX_SERVE_BATCH:
        raise ServeError(f"invalid --max-batch; {describe(f'an integer in [1, {MAX_SERVE_BATCH}]', max_batch)}")
    if not (isinstance(batch_delay_ms, (int, float)) and math.isfinite(batch_delay_ms) and batch_delay_ms >= 0):
        raise ServeError(f"invalid --batch-delay-ms; {describe('a finite number >= 0', batch_delay_ms)}")
    if not (isinstance(poll_seconds, (int, float)) and math.isfinite(poll_seconds) and poll_seconds >= 0.05):
        raise ServeError(f"invalid --poll-seconds; {describe('a finite number >= 0.05', poll_seconds)}")
    return artifacts.serving_target(export_dir, name)


def check_inspect(source: str, model_dir: str | Path | None, against: str | None) -> None:
    """`textlstm data inspect`: the data sources and, with --model, a complete run directory."""
    check_source_spec(source)
    if model_dir is not None:
        artifacts.check_run_dir(model_dir)
    if against is not None:
        check_source_spec(against)


def check_batch_size(batch_size: Any) -> None:
    """Raise InputError unless ``batch_size`` is an integer >= 1 (the Python API's check;
    the CLI's options are click ranges)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise InputError(f"invalid batch size; {describe('an integer >= 1', batch_size)}")
