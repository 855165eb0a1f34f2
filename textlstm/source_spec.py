"""The ``--data`` grammar: from a source spec string to a Source.

* ``tfds:NAME[/CONFIG][:SPLIT]``: a TensorFlow Datasets dataset;
* ``hf:PATH``: a Hugging Face dataset written with ``datasets.save_to_disk``;
* a folder ``[ROOT/]SPLIT/LABEL/FILE`` or an archive of one (.tar.gz, .tgz, .tar, .zip);
* a file: ``csv``, ``tsv``, ``jsonl``/``json``, ``parquet`` (by extension, optionally
  ``.gz``) or any file with ``--format`` (``lines``: label field, a space, then the text;
  ``fasttext``: ``__label__LABEL text``).
"""

from __future__ import annotations

from pathlib import Path

from textlstm.errors import DataError, describe
from textlstm.file_sources import FORMATS, FileSource, HfDiskSource, ReadOptions, file_format
from textlstm.sources import ARCHIVE_SUFFIXES, FolderSource, Source, TfdsSource, open_archive

SCHEMES = ("tfds", "hf")


def open_source(spec: str, options: ReadOptions | None = None, *, file_options_only: bool = False) -> Source:
    """Parse a source spec and return the matching Source; raise DataError when it is bad.

    Reading options other than the defaults are refused for a folder or archive, which
    reads none of them, unless ``file_options_only``: then they are meant for a file only
    (``data inspect --against`` shares the options of the inspected source)."""
    options = options or ReadOptions()
    if not spec or not spec.strip():
        raise DataError(f"empty data source; {describe('a path or tfds:NAME', spec)}")
    scheme, sep, rest = spec.partition(":")
    if sep and len(scheme) > 1 and not Path(spec).exists():
        if scheme == "tfds":
            return TfdsSource(spec, rest, options.text_columns, options.label_column)
        if scheme == "hf":
            path = Path(rest).expanduser()
            if not path.is_dir():
                raise DataError(
                    f"dataset folder not found; {describe('hf:PATH to a datasets.save_to_disk folder', spec)}"
                )
            return HfDiskSource(spec, path, options)
        raise DataError(
            f"unknown data source scheme {scheme + ':'!r}; expected one of "
            f"{[s + ':' for s in SCHEMES]} or a path to a file, folder or archive; received {spec!r}"
        )
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"data source not found; {describe('an existing file, folder, archive or tfds:NAME', spec)}")
    if path.is_dir():
        if not file_options_only:
            _refuse_file_options(spec, "folder", options)
        return FolderSource(spec, path)
    fmt = file_format(path, options)
    if fmt is not None:
        return FileSource(spec, path, fmt, options)
    archive = open_archive(spec, path)
    if archive is not None:
        if not file_options_only:
            _refuse_file_options(spec, "archive", options)
        return archive
    raise DataError(
        f"unsupported data file {spec!r}; expected a folder of class folders, an archive "
        f"({', '.join(ARCHIVE_SUFFIXES)}), a file ending in .csv, .tsv, .jsonl, .json or .parquet, "
        f"or --format one of {list(FORMATS)}"
    )


def _refuse_file_options(spec: str, kind: str, options: ReadOptions) -> None:
    """A folder or archive names its labels by its class folders and is read as UTF-8: the
    reading options of a file would be silently ignored."""
    flags = options.given_flags()
    if flags:
        raise DataError(
            f"{', '.join(flags)} {'does' if len(flags) == 1 else 'do'} not apply to the {kind} {spec}; expected "
            "no reading options with a folder or archive of class folders (they read UTF-8 texts, labelled by folder)"
        )
