"""`textlstm export`: pick the export format (SavedModel or TFLite) and write it."""

from __future__ import annotations

import numbers
from pathlib import Path

from textlstm.artifacts import path_argument
from textlstm.errors import ExportError, describe
from textlstm.saved_model import ExportResult, export_model, parse_version
from textlstm.tflite_export import export_tflite

FORMATS = ("savedmodel", "tflite")


def export(
    model_dir: str | Path,
    export_dir: str | Path,
    version: int | None = None,
    *,
    format: str = "savedmodel",  # noqa: A002 - the CLI's --format
    top_k: int | None = None,
    name: str | None = None,
    verify: bool = False,
) -> Path:
    """Export a run directory to ``export_dir/<version>/`` as a SavedModel (default) or
    with ``format="tflite"`` as a TFLite model; return that folder (see `export_any`)."""
    return export_any(model_dir, export_dir, version, fmt=format, top_k=top_k, name=name, verify=verify).path


def export_any(
    model_dir: str | Path,
    export_dir: str | Path,
    version: str | int | None = "auto",
    *,
    fmt: str = "savedmodel",
    top_k: int | None = None,
    name: str | None = None,
    verify: bool = False,
) -> ExportResult:
    """Export a run directory in ``fmt`` ("savedmodel": `export_model`; "tflite":
    `export_tflite`) to ``export_dir/<version>/``; ``version`` is "auto", None (both: the
    next free integer) or an integer, given as int or str."""
    export_dir = path_argument(export_dir, "export_dir", "a folder for version folders", ExportError)
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format; {describe(f'one of {list(FORMATS)}', fmt)}")
    if isinstance(version, bool) or not isinstance(version, (numbers.Integral, str, type(None))):
        # True is an int to Python: it became a version folder named "True".
        raise ExportError(f"invalid version; {describe('auto, None or an integer >= 1 (int or str)', version)}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral)):
        raise ExportError(f"invalid --top-k; {describe('an integer or None', top_k)}")
    top_k = None if top_k is None else int(top_k)
    if isinstance(version, numbers.Integral):
        version = int(version)
    number = version if isinstance(version, int) or version is None else parse_version(str(version))
    if fmt == "tflite":
        if top_k is not None:
            raise ExportError(
                "--top-k applies to --format savedmodel; expected no --top-k with --format tflite "
                "(its only output is probabilities)"
            )
        return export_tflite(model_dir, export_dir, number, name=name, verify=verify)
    return export_model(model_dir, export_dir, number, top_k=top_k, name=name, verify=verify)
