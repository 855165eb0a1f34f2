"""The config tree: defaults, files, overrides and their errors."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from textlstm.config import Config, allowed_keys, load_config, saved_config
from textlstm.errors import ConfigError


def test_config_defaults_round_trip_through_json() -> None:
    config = Config().validate()
    again = Config.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert again.model.dense_units == (64,)


def test_config_readme_table_gives_every_key_with_its_default() -> None:
    # The README's configuration table is where users read the defaults; a default changed
    # in the code alone would leave it telling another story.
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"^\| `(\w+\.\w+)` \| `([^`]*)` \|", readme, re.MULTILINE)
    rows = dict(found)
    # Each key once, so that no second row can hide behind the first.
    assert len(found) == len(rows) and sorted(rows) == sorted(allowed_keys())
    defaults = Config().to_dict()
    for key, shown in rows.items():
        section, name = key.split(".")
        try:
            value = json.loads(shown)
        except json.JSONDecodeError:
            value = shown
        assert value == defaults[section][name], f"README gives {key} = {shown}"


def test_config_readme_presets_table_gives_every_preset_with_its_keys() -> None:
    from textlstm.presets import PRESETS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z]+(?:-[a-z]+)+)` \| ((?:`[^`]+=[^`]+`(?:, )?)+)", readme, re.MULTILINE)
    shown = {name: tuple(re.findall(r"`([^`]+)`", sets)) for name, sets in rows}
    assert len(rows) == len(shown)
    assert shown == {name: preset.overrides for name, preset in PRESETS.items()}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("c.json", '{"model": {"lstm_units": 12}, "training": {"epochs": 2}}'),
        ("c.yaml", "model:\n  lstm_units: 12\ntraining:\n  epochs: 2\n"),
        ("c.toml", "[model]\nlstm_units = 12\n[training]\nepochs = 2\n"),
    ],
)
def test_config_loads_each_file_format(tmp_path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    config = load_config(path)
    assert config.model.lstm_units == 12
    assert config.training.epochs == 2
    assert config.vectorizer.max_tokens == Config().vectorizer.max_tokens


def test_config_yaml_reads_exponent_numbers(tmp_path) -> None:
    # PyYAML alone reads 1e-3 (no dot) as a string, as the README writes learning rates.
    path = tmp_path / "rates.yaml"
    path.write_text("training:\n  learning_rate: 1e-3\n  weight_decay: 2E-2\n")
    config = load_config(path)
    assert (config.training.learning_rate, config.training.weight_decay) == (0.001, 0.02)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "d.yaml",
            "training:\n  learning_rate: 0.01\n  epochs: 3\n  learning_rate: 0.001\n",
            "line 4: key 'learning_rate' given twice in one mapping; expected each key once",
        ),
        ("s.yaml", "model:\n  lstm_units: 8\nmodel:\n  dropout: 0.1\n", "line 3: key 'model' given twice"),
        (
            "d.json",
            '{"training": {"epochs": 3, "epochs": 4}}',
            "key 'epochs' given twice in one object; expected each key once",
        ),
        ("d.toml", "[training]\nepochs = 3\nepochs = 4\n", "could not be parsed as TOML"),
    ],
)
def test_config_file_refuses_a_key_given_twice(tmp_path, name: str, text: str, message: str) -> None:
    # Parsers keep one of the values silently (JSON and PyYAML the last), losing a setting.
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        load_config(path)
    assert "\n" not in str(caught.value)


def test_config_built_in_python_is_type_checked() -> None:
    # A string for an int met the range checks as a TypeError; a bare override string was
    # read one character at a time ("bad --set value ... received 't'").
    config = Config()
    config.training.epochs = "3"
    with pytest.raises(ConfigError, match=r"training\.epochs must be an integer; expected an integer; received '3'"):
        config.validate()
    config = Config()
    config.model.dense_units = [32, 16]
    assert config.validate().model.dense_units == (32, 16)
    with pytest.raises(ConfigError, match=r"bad overrides; expected a list of section\.key=value strings"):
        load_config(None, "training.epochs=3")
    with pytest.raises(ConfigError, match=r"bad overrides; expected a list"):
        load_config(None, None)
    with pytest.raises(ConfigError, match=r"bad --set value; expected a section\.key=value string; received 5"):
        load_config(None, [5])
    # NumPy numbers are numbers.
    config = Config()
    config.training.learning_rate, config.training.epochs = np.float32(0.01), np.int64(3)
    config.validate()
    assert (type(config.training.learning_rate), config.training.epochs) == (float, 3)


def test_config_yaml_merge_keys_still_load(tmp_path) -> None:
    # The duplicate-key check skips `<<`: a key after a merge may override a merged one.
    path = tmp_path / "merge.yaml"
    path.write_text(
        "base: &b {epochs: 3, batch_size: 16}\ntraining:\n  <<: *b\n  epochs: 4\n".replace("base", "x-base")
    )
    with pytest.raises(ConfigError, match=r"unknown config section 'x-base'"):
        load_config(path)
    path.write_text("training:\n  <<: {epochs: 3, batch_size: 16}\n  epochs: 4\n")
    config = load_config(path)
    assert (config.training.epochs, config.training.batch_size) == (4, 16)


def test_config_overrides_parse_types() -> None:
    config = load_config(
        None,
        [
            "training.epochs=3",
            "training.learning_rate=5e-4",
            "model.dense_units=[32, 16]",
            "data.limit=null",
            "data.cache=false",
            "vectorizer.standardize=lower",
        ],
    )
    assert config.training.epochs == 3
    assert config.training.learning_rate == pytest.approx(5e-4)
    assert config.model.dense_units == (32, 16)
    assert config.data.limit is None
    assert config.data.cache is False
    assert config.vectorizer.standardize == "lower"


def test_config_override_applies_after_file(tmp_path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"training": {"epochs": 2}}')
    assert load_config(path, ["training.epochs=7"]).training.epochs == 7


def test_config_preset_sits_between_the_defaults_and_a_file_and_set(tmp_path) -> None:
    from textlstm.presets import PRESETS

    preset = load_config(None, preset="long-documents")
    defaults = Config().to_dict()
    changed = {
        f"{section}.{key}"
        for section, values in preset.to_dict().items()
        for key, value in values.items()
        if defaults[section][key] != value
    }
    assert (
        changed == {o.partition("=")[0] for o in PRESETS["long-documents"].overrides} == {"model.naive_bayes_buckets"}
    )
    assert preset.model.naive_bayes_buckets == 2**21
    # A file's key overrides the preset, a key it lacks keeps the preset's value; --set wins.
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  naive_bayes_buckets: 4096\n")
    assert load_config(path, preset="long-documents").model.naive_bayes_buckets == 4096
    path.write_text("training:\n  epochs: 2\n")
    from_file = load_config(path, preset="long-documents")
    assert (from_file.model.naive_bayes_buckets, from_file.training.epochs) == (2**21, 2)
    assert load_config(path).model.naive_bayes_buckets == Config().model.naive_bayes_buckets
    # The log names what the preset set, and what --config or --set replaced again.
    # A handler of its own: the CLI's tests stop the textlstm logger's propagation in this process.
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    logger = logging.getLogger("textlstm.config")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        replaced = load_config(path, ["model.naive_bayes_buckets=8"], preset="long-documents")
        load_config(path, preset="long-documents")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert replaced.model.naive_bayes_buckets == 8
    said = [r.getMessage() for r in records if r.getMessage().startswith("preset ")]
    assert said == [
        "preset long-documents: nothing (model.naive_bayes_buckets replaced by --config or --set)",
        "preset long-documents: model.naive_bayes_buckets=2097152",
    ], said


def test_config_preset_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"^unknown preset; expected one of \['long-documents'\]; received 'long'$"):
        load_config(None, preset="long")
    # A fine-tuning run takes the architecture from its base: the preset would be dropped.
    with pytest.raises(
        ConfigError,
        match=r"^preset 'long-documents' sets model\.naive_bayes_buckets, which a fine-tuning run takes from its "
        r"base model; expected no preset with finetune\.init_from \(--init-from\); received 'long-documents'$",
    ):
        load_config(None, [f"finetune.init_from={json.dumps(str(tmp_path))}"], preset="long-documents")
    # A preset whose part the overrides switched off would change nothing while looking applied.
    with pytest.raises(
        ConfigError,
        match=r"^preset 'long-documents' has no effect on this configuration; expected the naive Bayes bag it "
        r"tunes .*; received model\.naive_bayes_bag=false, model\.ngram_order=2, ",
    ):
        load_config(None, ["model.naive_bayes_bag=false"], preset="long-documents")


def test_config_file_checked_after_its_overrides(tmp_path) -> None:
    # A file valid before model.naive_bayes_bag became the default: its mean mix now
    # conflicts with it, and --set repairs that, since the rules apply once all are set.
    path = tmp_path / "mean.yaml"
    path.write_text("model:\n  ngram_mix: mean\n")
    with pytest.raises(ConfigError, match=r"mean\.yaml: invalid value for model\.ngram_mix; expected tuned"):
        load_config(path)
    assert load_config(path, ["model.naive_bayes_bag=false"]).model.ngram_mix == "mean"
    with pytest.raises(ConfigError, match=r"mean\.yaml with --set: invalid value for model\.ngram_order"):
        load_config(path, ["model.naive_bayes_bag=false", "model.ngram_order=9"])
    # Types are still checked as the file is read, before the overrides.
    path.write_text("training:\n  epochs: many\n")
    with pytest.raises(ConfigError, match=r"training\.epochs"):
        load_config(path, ["training.epochs=3"])


def test_config_unknown_key_lists_allowed_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key model\.lstm_unit;.*model\.lstm_units") as info:
        load_config(None, ["model.lstm_unit=3"])
    assert all(key in str(info.value) for key in allowed_keys())


def test_config_unknown_key_in_file_is_an_error(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  epoch: 2\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown config key training\.epoch"):
        load_config(path)


def test_config_unknown_section() -> None:
    with pytest.raises(ConfigError, match=r"unknown config section 'optimizer'; expected one of \['data'"):
        load_config(None, ["optimizer.lr=1"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.epochs=abc", r"training\.epochs must be an integer; expected an integer; received 'abc'"),
        ("training.epochs=0", r"invalid value for training\.epochs; expected an integer >= 1; received 0"),
        (
            "training.epochs=100000000000000000000",
            r"training\.epochs is out of range; expected an integer from -2147483648 to 2147483647",
        ),
        ("model.lstm_units=1e300", r"model\.lstm_units is out of range; expected an integer from -2147483648"),
        ("training.seed=4294967296", r"training\.seed is out of range; expected an integer from 0 to 4294967295"),
        ("model.pooling=median", r"model\.pooling; expected one of \['max_mean'"),
        ("data.val_fraction=1.5", r"data\.val_fraction; expected a number in \[0, 1\); received 1\.5"),
        ("data.cache=maybe", r"data\.cache must be true or false"),
        ("data.holdout_by=file", r"data\.holdout_by; expected one of \['text', 'key'\]; received 'file'"),
        ("epochs=3", r"bad --set value; expected section\.key=value; received 'epochs=3'"),
        ("model.embeddings_file=", r"model\.embeddings_file; expected null or the path of a vectors file"),
        (
            "model.freeze_embeddings=true",
            r"model\.freeze_embeddings; expected false unless model\.embeddings_file is set",
        ),
    ],
)
def test_config_rejects_bad_values(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_config_embeddings_keys_round_trip_without_the_file(tmp_path) -> None:
    # A run's config.json names the vectors file; loading the run must not need that file.
    config = load_config(None, [f"model.embeddings_file={tmp_path / 'gone.vec'}", "model.freeze_embeddings=true"])
    again = Config.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again.model.embeddings_file == str(tmp_path / "gone.vec") and again.model.freeze_embeddings is True
    assert Config().model.embeddings_file is None and Config().model.freeze_embeddings is False


def test_config_missing_and_unparsable_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match=r"broken\.json could not be parsed as JSON"):
        load_config(broken)
    other = tmp_path / "c.ini"
    other.write_text("[x]")
    with pytest.raises(ConfigError, match="unsupported config file type"):
        load_config(other)


def test_config_of_a_model_saved_before_the_ngram_path_keeps_its_architecture() -> None:
    old = {"model": {"lstm_units": 32}, "training": {"epochs": 3}}
    assert saved_config(old).model.ngram_order == 0 and saved_config(old).model.lstm_units == 32
    assert Config.from_dict(old).model.ngram_order == 2  # a new config file gets today's default
    assert saved_config({"model": {"ngram_order": 1}}).model.ngram_order == 1
    assert saved_config(Config().to_dict()) == Config()
    # A run saved before data.holdout_by resumes on the hold-out it was split with.
    old_data = {"data": {"val_fraction": 0.1}}
    assert saved_config(old_data).data.holdout_by == "key" and Config.from_dict(old_data).data.holdout_by == "text"
    # A model saved before model.naive_bayes_bag has two members; a new config gets three.
    before = {"model": {"ngram_order": 2, "ngram_join": "average", "ngram_mix": "tuned"}}
    assert not saved_config(before).model.has_naive_bayes_bag()
    assert Config.from_dict(before).model.has_naive_bayes_bag()


def test_config_naive_bayes_bag_needs_a_bag_to_stand_beside_and_the_tuned_mix() -> None:
    # Without a mean-embedding bag that has its own output layer the key has no effect, so
    # a plain BiLSTM or a concatenated bag needs no second key.
    for other in ("model.ngram_order=0", "model.ngram_join=concat", "model.ngram_weighting=naive_bayes"):
        assert not Config().with_overrides([other]).model.has_naive_bayes_bag()
    assert not Config().with_overrides(["model.naive_bayes_bag=false"]).model.has_naive_bayes_bag()
    with pytest.raises(ConfigError, match=r"model\.ngram_mix; expected tuned with model\.naive_bayes_bag"):
        Config().with_overrides(["model.ngram_mix=mean"])
    assert Config().with_overrides(["model.ngram_mix=mean", "model.naive_bayes_bag=false"]).model.ngram_mix == "mean"
    for key, value in (("naive_bayes_buckets", 0), ("naive_bayes_scale", 0), ("naive_bayes_order", 5)):
        with pytest.raises(ConfigError, match=rf"model\.{key}; expected"):
            Config().with_overrides([f"model.{key}={value}"])


def test_config_keeps_seeds_and_limits_beyond_int32() -> None:
    # NumPy takes seeds up to 2**32 - 1; a saved run with such a seed must still load.
    config = Config.from_dict({"training": {"seed": 2**32 - 1}, "data": {"limit": 10**12}})
    assert (config.training.seed, config.data.limit) == (2**32 - 1, 10**12)
