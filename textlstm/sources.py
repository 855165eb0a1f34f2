"""Data sources: where labelled examples come from, before any TensorFlow is involved.

`textlstm.source_spec.open_source` turns a spec string into one of these. This module
holds the sources that come in folders or datasets:

* ``tfds:NAME[/CONFIG][:SPLIT]``: a TensorFlow Datasets text-classification dataset
  (downloaded and prepared by TFDS on first use); ``tfds:imdb_reviews`` for IMDB.
* a folder laid out like aclImdb: ``[ROOT/]SPLIT/LABEL/<one document per file>``, or
  ``LABEL/<file>`` without split folders (one split: the whole corpus);
* the same inside a ``.tar.gz``/``.tgz``/``.tar`` or ``.zip`` archive, read without
  extracting to disk (the official ``aclImdb_v1.tar.gz`` works as it is).

Every source yields ``(key, text, label)`` triples (``label`` a name, or a tuple of
names in a multi-label corpus), where ``key`` is stable across
runs (a member path or an index): error messages name it, and the validation hold-out
hashes it under ``data.holdout_by=key`` (by default it hashes the text).
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
import tarfile
import zipfile
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from textlstm.errors import DataError, describe

log = logging.getLogger(__name__)

# Folders that hold unlabelled documents in the official IMDB archive (train/unsup).
UNLABELED_FOLDERS = frozenset({"unsup"})
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
# The one split of a corpus laid out as LABEL/FILE without split folders.
ALL_SPLIT = ""

# One label name, or a set of them (as a tuple, in file order) for a multi-label corpus.
Label = str | tuple[str, ...]
Example = tuple[str, str, Label]


class Source(ABC):
    """A labelled corpus with named splits."""

    spec: str
    # A split named in the spec itself (tfds:NAME:SPLIT); empty when the caller chooses.
    fixed_split: str = ""

    @abstractmethod
    def splits(self) -> list[str]:
        """Names of the splits this source holds."""

    @abstractmethod
    def label_names(self) -> list[str]:
        """Sorted label names, the same for every split."""

    @abstractmethod
    def count(self, split: str) -> int | None:
        """Number of labelled examples in a split, or None when unknown before reading."""

    @abstractmethod
    def examples(self, split: str) -> Iterator[Example]:
        """Yield ``(key, text, label_name)`` for every example of a split, in a fixed order."""

    @abstractmethod
    def fingerprint(self) -> str:
        """A string that changes when the data changes (a content hash where affordable)."""

    def multi_label(self) -> bool:
        """True when examples carry sets of labels rather than one label each."""
        return False

    def where(self, key: str) -> str:
        """Where the example ``key`` is, for an error message (a file names its line)."""
        return f"example {key}"

    def file_count(self, split: str) -> int:
        """How many files a split can be divided by between workers (`FileShard`): one for
        a source read as a single stream (a file, an archive, TFDS)."""
        return 1

    def shard_examples(self, split: str, index: int, count: int) -> Iterator[Example]:
        """The examples of the ``index``-th of ``count`` shards of a split's files; only
        sources with several files (`file_count`) divide them."""
        raise DataError(f"{self.spec} is read as one stream; expected a source of several files to shard by file")

    def check_split(self, split: str) -> None:
        """Raise DataError unless the split exists."""
        if split not in self.splits():
            raise DataError(f"split {split!r} not found in {self.spec}; expected one of {self.splits()}")


def text_identity(text: str) -> str:
    """What makes two texts copies of each other, for the hold-out (``data.holdout_by=text``)
    and `data inspect`'s duplicate and shared counts: the text with case and runs of
    whitespace ignored."""
    return " ".join(text.casefold().split())


def file_sha256(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def _decode(raw: bytes, where: str, encoding: str = "utf-8") -> str:
    try:
        return raw.decode(encoding)
    except UnicodeError as exc:  # also the plain UnicodeError of codecs such as idna
        name = "UTF-8" if codecs.lookup(encoding).name == "utf-8" else encoding
        raise DataError(
            f"{where} is not valid {name} (byte {getattr(exc, 'start', '?')}); expected text in that encoding, "
            "try --encoding latin-1"
        ) from exc


class _Layout:
    """Split and label structure found in a list of member paths: ``SPLIT/LABEL/FILE``, or
    ``LABEL/FILE`` for a corpus without split folders (then one split, the whole corpus)."""

    def __init__(self, spec: str, paths: list[PurePosixPath]) -> None:
        prefixes: list[tuple[str, ...]] = [()]
        # An archive usually wraps everything in one top folder (aclImdb/), whose extra
        # files (aclImdb/train/labeledBow.feat ...) would otherwise look like SPLIT/LABEL/FILE.
        tops = {p.parts[0] for p in paths if len(p.parts) > 1}
        if len(tops) == 1:
            prefixes.append((tops.pop(),))
        with_splits = [self._collect(paths, prefix, 3) for prefix in prefixes]
        flat = [self._collect(paths, prefix, 2) for prefix in prefixes]
        standard = [c for c in with_splits if {"train", "test"} & set(c)]
        by_label = [c for c in flat if c and len(c[ALL_SPLIT]) >= 2]
        chosen = (standard or by_label or [c for c in with_splits if c] or [{}])[-1]
        self.files: dict[str, dict[str, list[str]]] = chosen
        self.single_split = ALL_SPLIT in chosen
        if not self.files:
            top = sorted({p.parts[0] for p in paths})[:10]
            found = f"top-level entries {top}" if top else "no file in its first three folder levels"
            raise DataError(
                f"{spec} has no class folders; expected SPLIT/LABEL/FILE (e.g. train/pos/1.txt) or "
                f"LABEL/FILE with at least 2 labels (optionally in one top folder); received {found}"
            )
        for labels in self.files.values():
            for members in labels.values():
                members.sort()
        self.labels = sorted({label for labels in self.files.values() for label in labels})
        self.member_split = {m: split for split, bl in self.files.items() for ms in bl.values() for m in ms}

    @staticmethod
    def _collect(paths: list[PurePosixPath], prefix: tuple[str, ...], depth: int) -> dict[str, dict[str, list[str]]]:
        files: dict[str, dict[str, list[str]]] = {}
        for p in paths:
            if p.parts[: len(prefix)] != prefix:
                continue
            parts = p.parts[len(prefix) :]
            if len(parts) != depth or any(part.startswith(".") for part in parts):
                continue
            split, label = (parts[0], parts[1]) if depth == 3 else (ALL_SPLIT, parts[0])
            if label not in UNLABELED_FOLDERS:
                files.setdefault(split, {}).setdefault(label, []).append(str(p))
        return files


class _LayoutSource(Source):
    """A source whose documents sit in ``SPLIT/LABEL/FILE`` or ``LABEL/FILE`` folders, read
    in ``encoding`` and labelled by their class folder's name, renamed by ``label_map``."""

    layout: _Layout
    encoding: str
    label_map: dict[str, str]

    def _set_reading(self, encoding: str, label_map: dict[str, str] | None) -> None:
        """Check and keep the reading options a class-folder corpus takes."""
        try:
            # Non-empty bytes: an empty decode skips the check that refuses codecs that are
            # not text encodings (rot13, base64).
            b"\0\0\0\0".decode(encoding)
        except UnicodeDecodeError:
            pass
        except (LookupError, ValueError) as exc:  # ValueError: punycode, undefined, a name of odd bytes
            raise DataError(f"unknown --encoding; {describe('a Python codec name', encoding)}") from exc
        self.encoding = encoding
        self.label_map = dict(label_map or {})
        folders = {label for labels in self.layout.files.values() for label in labels}
        unknown = sorted(set(self.label_map) - folders)
        if unknown:
            raise DataError(
                f"--label-map renames {unknown}, which {self.spec} has no class folder for; "
                f"expected names among {sorted(folders)}"
            )

    def _label(self, folder: str) -> str:
        return self.label_map.get(folder, folder)

    def splits(self) -> list[str]:
        """Split folder names (none for a corpus without split folders)."""
        return [] if self.layout.single_split else sorted(self.layout.files)

    def check_split(self, split: str) -> None:
        """Without split folders any split name means the whole corpus."""
        if not self.layout.single_split:
            super().check_split(split)

    def _members(self, split: str) -> dict[str, list[str]]:
        self.check_split(split)
        return self.layout.files[ALL_SPLIT if self.layout.single_split else split]

    def label_names(self) -> list[str]:
        """Class folder names across splits (renamed by the label map), sorted."""
        return sorted({self._label(folder) for folder in self.layout.labels})

    def count(self, split: str) -> int:
        """Number of documents in a split's class folders."""
        return sum(len(m) for m in self._members(split).values())


class FolderSource(_LayoutSource):
    """``[ROOT/]SPLIT/LABEL/FILE`` on disk."""

    def __init__(self, spec: str, root: Path, encoding: str = "utf-8", label_map: dict[str, str] | None = None) -> None:
        self.spec = spec
        self.root = root
        paths = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel = Path(dirpath).relative_to(root)
            if len(rel.parts) > 3:
                continue
            paths.extend(PurePosixPath(*rel.parts, f) for f in filenames)
        self.layout = _Layout(spec, paths)
        self._set_reading(encoding, label_map)

    def examples(self, split: str) -> Iterator[Example]:
        """Read each document of a split, label by label, files in name order."""
        return self.shard_examples(split, 0, 1)

    def file_count(self, split: str) -> int:
        """One file a document."""
        return self.count(split)

    def shard_examples(self, split: str, index: int, count: int) -> Iterator[Example]:
        """Every ``count``-th document of `examples`, from the ``index``-th: a worker reads
        only its own files."""
        members = [(label, m) for label, ms in sorted(self._members(split).items()) for m in ms]
        for label, member in members[index::count]:
            path = self.root / member
            yield member, _decode(path.read_bytes(), str(path), self.encoding), self._label(label)

    def fingerprint(self) -> str:
        """SHA-256 over every labelled file's relative path and content."""
        digest = hashlib.sha256()
        for member in sorted(self.layout.member_split):
            digest.update(member.encode())
            digest.update(hashlib.sha256((self.root / member).read_bytes()).digest())
        return "sha256:" + digest.hexdigest()


class _TarReader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def names(self) -> list[PurePosixPath]:
        try:
            with tarfile.open(self.path, "r:*") as tar:
                return [PurePosixPath(m.name) for m in tar if m.isfile()]
        except (tarfile.TarError, OSError, EOFError) as exc:
            # tarfile lists each compression it tried on lines of their own.
            detail = str(exc).splitlines()[0].rstrip(":") if str(exc) else type(exc).__name__
            raise DataError(f"cannot read archive {self.path}: {detail}; expected a valid tar or tar.gz file") from exc

    def read(self, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
        # A compressed tar can only be read front to back: stream it once and pick members.
        with tarfile.open(self.path, "r:*") as tar:
            for member in tar:
                if member.isfile() and member.name in wanted:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        yield member.name, handle.read()


class _ZipReader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def names(self) -> list[PurePosixPath]:
        try:
            with zipfile.ZipFile(self.path) as archive:
                return [PurePosixPath(n) for n in archive.namelist() if not n.endswith("/")]
        except (zipfile.BadZipFile, OSError) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"cannot read archive {self.path}: {detail}; expected a valid zip file") from exc

    def read(self, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
        with zipfile.ZipFile(self.path) as archive:
            for name in sorted(wanted):
                yield name, archive.read(name)


class ArchiveSource(_LayoutSource):
    """The folder layout inside a tar(.gz) or zip archive, streamed without extraction."""

    def __init__(
        self,
        spec: str,
        path: Path,
        reader: _TarReader | _ZipReader,
        encoding: str = "utf-8",
        label_map: dict[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.path = path
        self.reader = reader
        self.layout = _Layout(spec, reader.names())
        self._set_reading(encoding, label_map)

    def examples(self, split: str) -> Iterator[Example]:
        """Stream the documents of one split in archive order."""
        wanted = {m for ms in self._members(split).values() for m in ms}
        for name, raw in self.reader.read(wanted):
            label = self._label(PurePosixPath(name).parts[-2])
            yield name, _decode(raw, f"{self.path}:{name}", self.encoding), label

    def fingerprint(self) -> str:
        """SHA-256 of the archive file."""
        return file_sha256(self.path)


class TfdsSource(Source):
    """``tfds:NAME[/CONFIG][:SPLIT]`` through tensorflow-datasets (downloads on first use)."""

    def __init__(
        self, spec: str, rest: str, text_columns: tuple[str, ...] = (), label_column: str | None = None
    ) -> None:
        self.spec = spec
        self.text_columns = tuple(text_columns)
        self.label_column = label_column
        name, _, self.fixed_split = rest.partition(":")
        if not name:
            raise DataError(f"missing dataset name; {describe('tfds:NAME[/CONFIG][:SPLIT]', spec)}")
        self.name = name
        self._builder = None
        self._prepared = False
        self._features: tuple[list[str], str] | None = None

    def _unprepared(self):  # noqa: ANN202 - a tfds DatasetBuilder; tfds is imported lazily
        """The TFDS builder before any download: its features are known from its code."""
        if self._builder is None:
            import tensorflow_datasets as tfds

            try:
                self._builder = tfds.builder(self.name)
            except Exception as exc:  # tfds raises several types for unknown names
                raise DataError(self._why_unknown(exc)) from exc
        return self._builder

    def _why_unknown(self, exc: Exception) -> str:
        """A one-line error for a `tfds:NAME[/CONFIG]` that tfds cannot build."""
        import tensorflow_datasets as tfds

        base, _, config = self.name.partition("/")
        first = str(exc).splitlines()[0].strip() if str(exc) else type(exc).__name__
        try:
            configs = list(tfds.builder_cls(base).builder_configs)
        except tfds.core.registered.DatasetNotFoundError:  # listing all datasets would not fit a line
            return (
                f"unknown TFDS dataset {base!r} in {self.spec}; expected a name from tfds.list_builders() "
                "(e.g. imdb_reviews, ag_news_subset)"
            )
        except Exception:  # a builder that fails to load: its own words say why
            return f"cannot open TFDS dataset {self.spec}: {first}"
        if config and config not in configs:
            expected = f"one of {configs}" if configs else f"none: {base} has no configs"
            return f"unknown config {config!r} of TFDS dataset {base} in {self.spec}; expected {expected}"
        return f"cannot open TFDS dataset {self.spec}: {first}"

    @property
    def builder(self):  # noqa: ANN201 - a tfds DatasetBuilder; tfds is imported lazily
        """The TFDS builder, its data downloaded and prepared on first use."""
        if not self._prepared:
            builder = self._unprepared()
            # Before any download: a dataset without text and labels (an image dataset, a
            # typo) is refused at once instead of after fetching it.
            self._text_and_label()
            # Downloads and prepares on first use; a no-op once the data is in ~/tensorflow_datasets.
            if not builder.is_prepared():
                # Offline, TFDS retries the download ten times with growing pauses, about
                # 3.5 minutes of urllib3 warnings before the error (measured: 211 s).
                log.info(
                    "%s is not prepared under %s: downloading it (without network TFDS retries for about "
                    "3.5 minutes before it gives up; a local archive or file works offline)",
                    self.spec,
                    builder.data_dir,
                )
            try:
                builder.download_and_prepare()
            except Exception as exc:  # network, disk and checksum failures all land here
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise DataError(
                    f"could not download or prepare {self.spec}: {first}; expected network access or a "
                    "prepared copy under ~/tensorflow_datasets (a local archive works offline)"
                ) from exc
            self._prepared = True
        return self._builder

    def _text_and_label(self) -> tuple[list[str], str]:
        """Text feature(s) and the label feature: named by the caller, else found by type."""
        if self._features is None:
            import tensorflow_datasets as tfds

            features = self._unprepared().info.features
            names = sorted(features.keys())
            for wanted in (*self.text_columns, *([self.label_column] if self.label_column else [])):
                if wanted not in features:
                    raise DataError(f"{self.spec} has no feature {wanted!r}; expected one of {names}")
            texts = list(self.text_columns) or [k for k, f in features.items() if isinstance(f, tfds.features.Text)]
            labels = (
                [self.label_column]
                if self.label_column
                else [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
            )
            if len(texts) < 1 or len(labels) != 1 or (len(texts) > 1 and not self.text_columns):
                raise DataError(
                    f"{self.spec}: cannot tell the text and label features apart; expected one Text and one "
                    f"ClassLabel feature, or --text-column and --label-column; received features {names}"
                )
            if not isinstance(features[labels[0]], tfds.features.ClassLabel):
                raise DataError(
                    f"{self.spec}: label feature {labels[0]!r} is not a ClassLabel; expected a ClassLabel "
                    f"feature (one of {[k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]})"
                )
            if labels[0] in texts:
                raise DataError(
                    f"{self.spec}: feature {labels[0]!r} is both text and label; expected different features"
                )
            self._features = (texts, labels[0])
        return self._features

    def splits(self) -> list[str]:
        """The split fixed in the spec, or every split the dataset declares."""
        declared = sorted(self.builder.info.splits.keys())
        if self.fixed_split:
            if declared and self.fixed_split not in declared:
                raise DataError(f"split {self.fixed_split!r} not found in {self.spec}; expected one of {declared}")
            return [self.fixed_split]
        return declared

    def resolve_split(self, split: str) -> str:
        """A split fixed in the spec overrides the one asked for."""
        return self.fixed_split or split

    def check_split(self, split: str) -> None:
        """Raise DataError unless the (possibly fixed) split exists."""
        # Split metadata can be absent (e.g. under tfds.testing.mock_data); TFDS then
        # reports an unknown split itself when it is read.
        if self.builder.info.splits:
            super().check_split(self.resolve_split(split))

    def label_names(self) -> list[str]:
        """The ClassLabel names, in the dataset's own id order."""
        return list(self.builder.info.features[self._text_and_label()[1]].names)

    def count(self, split: str) -> int | None:
        """Examples in a split as recorded in the dataset info (None when not recorded)."""
        self.check_split(split)
        splits = self.builder.info.splits
        name = self.resolve_split(split)
        return int(splits[name].num_examples) if name in splits else None

    def examples(self, split: str) -> Iterator[Example]:
        """Yield examples of a split; keys are ``split:index``."""
        import tensorflow_datasets as tfds

        self.check_split(split)
        split = self.resolve_split(split)
        text_keys, label_key = self._text_and_label()
        names = self.label_names()
        dataset = self.builder.as_dataset(split=split, shuffle_files=False)
        for i, item in enumerate(tfds.as_numpy(dataset)):
            parts = [item[key] for key in text_keys]
            text = " ".join(p.decode("utf-8") if isinstance(p, bytes) else str(p) for p in parts)
            yield f"{split}:{i}", text, names[int(item[label_key])]

    def fingerprint(self) -> str:
        """Dataset name, config and version (TFDS versions its prepared data)."""
        info = self.builder.info
        return f"tfds:{info.full_name}"


def open_archive(
    spec: str, path: Path, encoding: str = "utf-8", label_map: dict[str, str] | None = None
) -> ArchiveSource | None:
    """An ArchiveSource when the file name is an archive's, else None."""
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return ArchiveSource(spec, path, _TarReader(path), encoding, label_map)
    if name.endswith(".zip"):
        return ArchiveSource(spec, path, _ZipReader(path), encoding, label_map)
    return None


class FileShard:
    """One worker's share of a source's files (``index`` of ``count``): the same source
    but for `examples`, which reads only that share's files."""

    def __init__(self, source: Source, index: int, count: int) -> None:
        self.source = source
        self.index = index
        self.count_of_shards = count

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)

    def examples(self, split: str) -> Iterator[Example]:
        """The examples of this shard's files."""
        return self.source.shard_examples(split, self.index, self.count_of_shards)
