"""SADAConfig: defaults from the paper, errors that name the field and its range, CLI parsing."""

from __future__ import annotations

import pytest
from transformers import HfArgumentParser

from sada_hf import SADAConfig
from sada_hf.ops import DEFAULT_MAX_MAGNITUDES, OP_NAMES


def test_defaults_are_the_papers():
    config = SADAConfig()
    assert (config.window, config.decay, config.strategy, config.direction) == (10, 0.9, "sada", "stable_strong")
    assert config.ops == list(OP_NAMES) and config.magnitudes == DEFAULT_MAX_MAGNITUDES


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("window", 1, r"`window` must be an integer >= 2, got 1"),
        ("decay", 0.0, r"`decay` must be in \(0, 1\]"),
        ("decay", 1.5, r"`decay` must be in \(0, 1\]"),
        ("normalization", "zscore", r"`normalization` must be one of \['minmax', 'rank'\]"),
        ("direction", "up", r"`direction` must be one of"),
        ("strategy", "autoaugment", r"`strategy` must be one of"),
        ("store_dtype", "bfloat16", r"`store_dtype` must be one of \['float32', 'float16'\]"),
        ("warmup_strength", 1.5, r"`warmup_strength` must be None or in \[0, 1\]"),
        ("ops", [], r"`ops` is empty"),
        ("ops", ["rotate", "cutout"], r"unknown names \['cutout'\]"),
        ("max_magnitudes", {"equalize": 1.0}, r"'equalize', which has no magnitude"),
        ("max_magnitudes", {"posterize": 8}, r"`max_magnitudes\['posterize'\]` must be in \[0, 7.0\]"),
        ("augmentation_seed", -1, r"`augmentation_seed` must be None or an integer >= 0"),
    ],
)
def test_invalid_values_name_the_field_and_range(field, value, message):
    with pytest.raises(ValueError, match=message):
        SADAConfig(**{field: value})


def test_magnitude_overrides_merge_with_defaults():
    config = SADAConfig(max_magnitudes='{"rotate": 45}')
    assert config.magnitudes["rotate"] == 45 and config.magnitudes["shear_x"] == DEFAULT_MAX_MAGNITUDES["shear_x"]


def test_round_trip_through_a_dict_and_unknown_keys():
    config = SADAConfig(window=5, normalization="rank", ops=["rotate", "color"], augmentation_seed=3)
    assert SADAConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match=r"Unknown SADAConfig fields \['windw'\]"):
        SADAConfig.from_dict({"windw": 5})


def test_hf_argument_parser_reads_every_field():
    (config,) = HfArgumentParser(SADAConfig).parse_args_into_dataclasses(
        ["--window", "5", "--normalization", "rank", "--ops", "rotate", "color", "--max_magnitudes", '{"rotate": 10}',
         "--warmup_strength", "0.3", "--strategy", "sada_shuffled"]
    )  # fmt: skip
    assert config == SADAConfig(
        window=5, normalization="rank", ops=["rotate", "color"], max_magnitudes={"rotate": 10},
        warmup_strength=0.3, strategy="sada_shuffled",
    )  # fmt: skip
    with pytest.raises(SystemExit):
        HfArgumentParser(SADAConfig).parse_args_into_dataclasses(["--normalization", "zscore"])
