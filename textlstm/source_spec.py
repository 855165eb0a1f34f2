"""The ``--data`` grammar: from a source spec string to a Source.

* ``tfds:NAME[/CONFIG][:SPLIT]``: a TensorFlow Datasets dataset;
* ``hf:PATH``: a Hugging Face dataset written with ``datasets.save_to_disk``;
* a folder ``[ROOT/]SPLIT/LABEL/FILE`` or an archive of one (.tar.gz, .tgz, .tar, .zip);
* a file: ``csv``, ``tsv``, ``jsonl``/``json``, ``parquet`` (by extension, optionally
  ``.gz``) or any file with ``--format`` (``lines``: label field, a space, then the text;
  ``fasttext``: ``__label__LABEL text``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textlstm.errors import DataError, InputError, describe
from textlstm.file_sources import FORMATS, FileSource, HfDiskSource, ReadOptions, file_format
from textlstm.sources import ARCHIVE_SUFFIXES, FolderSource, Source, TfdsSource, open_archive

SCHEMES = ("tfds", "hf")
# The reading options a folder or archive of class folders takes.
LAYOUT_FLAGS = ("--encoding", "--label-map")
# The reading options a TFDS dataset takes (its features are typed: no format or label rules).
TFDS_FLAGS = ("--text-column", "--label-column")
# Files that `datasets.save_to_disk` writes at the top of its folder (a DatasetDict, a Dataset).
HF_FOLDER_FILES = ("dataset_dict.json", "state.json")


def data_spec(data: Any) -> str:
    """A data source given to the Python API as a str or path-like object, as the spec
    text the rest of textlstm reads; DataError for anything else."""
    if isinstance(data, os.PathLike):
        data = os.fspath(data)
    if not isinstance(data, str):
        raise DataError(
            f"bad data source; {describe('a str or pathlib.Path: a path, tfds:NAME or hf:PATH', type(data).__name__)}"
        )
    return data


def reading_options(options: Any) -> ReadOptions | None:
    """``options`` when it is None or a ReadOptions; InputError otherwise (a dict of the
    same keys is a common slip)."""
    if options is not None and not isinstance(options, ReadOptions):
        raise InputError(f"bad read_options; {describe('a textlstm.ReadOptions (or None)', type(options).__name__)}")
    return options


def open_source(spec: str, options: ReadOptions | None = None, *, file_options_only: bool = False) -> Source:
    """Parse a source spec and return the matching Source; raise DataError when it is bad.

    A folder or archive of class folders takes ``--encoding`` and ``--label-map`` and
    refuses the other reading options (its labels are its folder names), unless
    ``file_options_only``: then the options are meant for a file and a folder or archive
    takes only ``--encoding`` (``data inspect --against`` shares the options of the
    inspected source)."""
    options = reading_options(options) or ReadOptions()
    spec = data_spec(spec)
    scheme, rest = check_source_spec(spec)
    if scheme == "tfds":
        unfit = [flag for flag in options.given_flags() if flag not in TFDS_FLAGS]
        if unfit and not file_options_only:
            raise DataError(
                f"{', '.join(unfit)} {'does' if len(unfit) == 1 else 'do'} not apply to the TFDS dataset {spec}; "
                f"expected only {' and '.join(TFDS_FLAGS)} with tfds: (its label names come from the dataset)"
            )
        return TfdsSource(spec, rest, options.text_columns, options.label_column)
    if scheme == "hf":
        return HfDiskSource(spec, Path(rest).expanduser(), options, lenient=file_options_only)
    path = Path(spec).expanduser()
    # For `data inspect --against`, a folder or archive takes the inspected source's
    # --encoding only: its label map names the other source's labels.
    layout_options = ReadOptions(encoding=options.encoding) if file_options_only else options
    if path.is_dir():
        saved = next((name for name in HF_FOLDER_FILES if (path / name).is_file()), None)
        if saved is not None:
            # Read as class folders, its Arrow files would be "texts" in a split folder.
            raise DataError(
                f"{spec} is a Hugging Face dataset folder (it holds {saved}, written by save_to_disk); "
                f"expected hf:{spec} to read it as one"
            )
        _refuse_file_options(spec, "folder", layout_options)
        return FolderSource(spec, path, layout_options.encoding, layout_options.label_map)
    archive_name = path.name.lower().endswith(ARCHIVE_SUFFIXES)
    # The inspected file's --format is not the --against archive's.
    fmt = None if file_options_only and archive_name else file_format(path, options)
    if fmt is not None:
        return FileSource(spec, path, fmt, options, lenient=file_options_only)
    if archive_name:
        # Checked before the archive is opened: reading a large archive's names takes a while.
        _refuse_file_options(spec, "archive", layout_options)
        archive = open_archive(spec, path, layout_options.encoding, layout_options.label_map)
        if archive is not None:
            return archive
    raise DataError(
        f"unsupported data file {spec!r}; expected a folder of class folders, an archive "
        f"({', '.join(ARCHIVE_SUFFIXES)}), a file ending in .csv, .tsv, .jsonl, .json or .parquet, "
        f"or --format one of {list(FORMATS)}"
    )


def source_kind(spec: str, options: ReadOptions | None = None) -> str | None:
    """The kind of source a spec names, judged from its text and what exists, without
    opening it: "tfds", "hf", "layout" (class folders: a folder or an archive of them),
    "file:FORMAT", or None when it cannot be told (a missing path without an extension)."""
    options = options or ReadOptions()
    spec = data_spec(spec)
    scheme, sep, _ = spec.partition(":")
    if sep and len(scheme) > 1 and scheme in SCHEMES and not Path(spec).exists():
        return scheme
    path = Path(spec).expanduser()
    if path.is_dir():
        return "layout"
    try:
        fmt = file_format(path, options)
    except DataError:
        return None
    if fmt is not None:
        return f"file:{fmt}"
    return "layout" if path.name.lower().endswith(ARCHIVE_SUFFIXES) else None


def check_source_spec(spec: str) -> tuple[str | None, str]:
    """Raise DataError when a source spec names nothing (empty, an unknown scheme, a missing
    path or ``hf:`` folder), without opening it; return its scheme (``tfds``, ``hf`` or None
    for a path) and the rest of the spec."""
    spec = data_spec(spec)
    if not spec or not spec.strip():
        raise DataError(f"empty data source; {describe('a path or tfds:NAME', spec)}")
    scheme, sep, rest = spec.partition(":")
    if sep and len(scheme) > 1 and not Path(spec).exists():
        if scheme == "hf" and not Path(rest).expanduser().is_dir():
            raise DataError(f"dataset folder not found; {describe('hf:PATH to a datasets.save_to_disk folder', spec)}")
        if scheme in SCHEMES:
            return scheme, rest
        raise DataError(
            f"unknown data source scheme {scheme + ':'!r}; expected one of "
            f"{[s + ':' for s in SCHEMES]} or a path to a file, folder or archive; received {spec!r}"
        )
    if not Path(spec).expanduser().exists():
        raise DataError(f"data source not found; {describe('an existing file, folder, archive or tfds:NAME', spec)}")
    return None, spec


def _refuse_file_options(spec: str, kind: str, options: ReadOptions) -> None:
    """A folder or archive names its labels by its class folders: the reading options of a
    file other than --encoding and --label-map would be silently ignored."""
    flags = [flag for flag in options.given_flags() if flag not in LAYOUT_FLAGS]
    if flags:
        raise DataError(
            f"{', '.join(flags)} {'does' if len(flags) == 1 else 'do'} not apply to the {kind} {spec}; expected "
            f"only {' and '.join(LAYOUT_FLAGS)} with a folder or archive of class folders (labelled by folder)"
        )
