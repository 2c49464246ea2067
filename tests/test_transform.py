"""SADATransform and EvalTransform: determinism, strengths, decoding and model input."""

from __future__ import annotations

import copy
import io
import math
import pickle
import random

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import ViTImageProcessor

from sada_hf import EvalTransform, SADAConfig, SADATransform
from sada_hf.ops import apply_op
from sada_hf.strengths import StrengthSchedule
from sada_hf.transform import _visit_key, fit, to_rgb

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


@pytest.fixture(scope="module")
def rows(cifar_train):
    """A raw batch (what `set_transform` hands the transform) of 8 real images with an index column."""
    raw = cifar_train.select(range(8))
    return {"image": list(raw["image"]), "label": list(raw["label"]), "index": list(range(100, 108))}


def run(transform: SADATransform, rows: dict, positions=None) -> torch.Tensor:
    positions = range(len(rows["index"])) if positions is None else positions
    batch = {key: [values[p] for p in positions] for key, values in rows.items()}
    return transform(batch)["pixel_values"]


def test_output_holds_pixel_values_labels_and_index(rows):
    out = SADATransform(size=32, mean=MEAN, std=STD)(rows)
    assert set(out) == {"pixel_values", "labels", "label", "index"}  # `label` too: HF example collators read it
    assert out["pixel_values"].shape == (8, 3, 32, 32) and out["pixel_values"].dtype == torch.float32
    assert out["labels"] == out["label"] == rows["label"] and out["index"] == rows["index"]


def test_same_seed_epoch_index_gives_the_same_bytes_in_any_batch(rows):
    transform = SADATransform(size=32, mean=MEAN, std=STD, config=SADAConfig(augmentation_seed=7))
    whole = run(transform, rows)
    reversed_order = run(transform, rows, positions=range(7, -1, -1)).flip(0)
    one_by_one = torch.cat([run(transform, rows, positions=[p]) for p in range(8)])
    assert torch.equal(whole, reversed_order) and torch.equal(whole, one_by_one)

    transform.set_epoch(1)
    next_epoch = run(transform, rows)
    other_seed = run(SADATransform(size=32, mean=MEAN, std=STD, config=SADAConfig(augmentation_seed=8)), rows)
    for other in (next_epoch, other_seed):
        differs = [not torch.equal(a, b) for a, b in zip(whole, other)]
        assert sum(differs) >= 6, differs


def users_pipeline():
    """The base augmentation of Hugging Face's run_image_classification.py, at 24 pixels."""
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomResizedCrop(24, scale=(0.3, 1.0)), v2.RandomHorizontalFlip()])


def test_base_transforms_run_before_the_op_with_the_visits_draws(rows):
    pipeline, config = users_pipeline(), SADAConfig(augmentation_seed=3, warmup_strength=0.8)
    transform = SADATransform(size=24, mean=MEAN, std=STD, base_transforms=pipeline, config=config)
    transform.set_epoch(2)
    torch.manual_seed(123)
    callers_state = torch.get_rng_state()
    out = run(transform, rows)
    assert torch.equal(torch.get_rng_state(), callers_state)  # the caller's draws are not consumed

    by_hand = []
    for image, index in zip(rows["image"], rows["index"]):
        draw = transform.draw(random.Random(_visit_key(3, 2, index)), image.size)
        torch.manual_seed(draw.base_seed)
        cropped = pipeline(to_rgb(image))
        by_hand.append(apply_op(cropped, draw.op, 0.8, draw.sign, config.magnitudes.get(draw.op)))
    assert torch.equal(out, EvalTransform(size=24, mean=MEAN, std=STD)({"image": by_hand})["pixel_values"])

    torch.manual_seed(999)  # another caller state, another batch order, a worker's pickled copy: the same images
    assert torch.equal(run(transform, rows, positions=range(7, -1, -1)).flip(0), out)
    assert torch.equal(run(pickle.loads(pickle.dumps(transform)), rows), out)
    transform.set_epoch(3)
    assert sum(not torch.equal(a, b) for a, b in zip(run(transform, rows), out)) >= 6


def test_base_transforms_replace_crop_and_flip_and_must_return_an_image():
    with pytest.raises(ValueError, match="`base_transforms` replace `crop` and `horizontal_flip`"):
        SADATransform(size=24, crop="random_crop", base_transforms=users_pipeline())
    with pytest.raises(TypeError, match="must be callable"):
        SADATransform(size=24, base_transforms=[users_pipeline()])
    to_tensor = SADATransform(size=24, base_transforms=lambda image: torch.zeros(3, 24, 24))
    with pytest.raises(TypeError, match="must return a PIL image, got Tensor: leave out ToImage"):
        to_tensor({"image": [Image.new("RGB", (32, 32))], "label": [0], "index": [0]})


def test_model_input_is_to_tensor_and_normalise(rows):
    transform = SADATransform(
        size=32, mean=MEAN, std=STD, crop="none", horizontal_flip=False, config=SADAConfig(strategy="none")
    )
    expected = np.stack([np.asarray(to_rgb(image), dtype=np.float64) / 255 for image in rows["image"]])
    expected = (expected - np.array(MEAN)) / np.array(STD)
    got = transform(rows)["pixel_values"].permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_warmup_strength_zero_applies_only_the_base_augmentation(rows):
    magnitude_ops = ["rotate", "shear_x", "solarize", "posterize", "color"]
    base_only = SADATransform(size=32, mean=MEAN, std=STD, config=SADAConfig(strategy="none", augmentation_seed=1))
    warm_zero = SADATransform(
        size=32, mean=MEAN, std=STD, config=SADAConfig(ops=magnitude_ops, warmup_strength=0.0, augmentation_seed=1)
    )
    warm_random = SADATransform(size=32, mean=MEAN, std=STD, config=SADAConfig(ops=magnitude_ops, augmentation_seed=1))
    assert torch.equal(run(base_only, rows), run(warm_zero, rows))
    assert not torch.equal(run(base_only, rows), run(warm_random, rows))


def test_published_strengths_drive_the_op(rows):
    config = SADAConfig(augmentation_seed=3)
    schedule = StrengthSchedule(200)
    strengths = torch.rand(200, generator=torch.Generator().manual_seed(0))
    strengths[104] = math.nan  # still in warm-up
    schedule.publish(strengths)
    schedule.set_epoch(4)
    transform = SADATransform(size=32, mean=MEAN, std=STD).bound_to(schedule, config)
    got = transform(rows)["pixel_values"]
    for position, index in enumerate(rows["index"]):
        image = to_rgb(rows["image"][position])
        draw = transform.draw(random.Random(_visit_key(3, 4, index)), image.size)
        expected = transform.model_input([transform.apply(image, draw, float(strengths[index]))])[0]
        assert torch.equal(got[position], expected), index
    assert transform.config is config and transform.schedule is schedule


def test_bound_copy_leaves_the_callers_transform_alone():
    transform = SADATransform(size=32)
    bound = transform.bound_to(StrengthSchedule(10), SADAConfig(augmentation_seed=5))
    assert transform.schedule is not bound.schedule and transform.config.augmentation_seed is None


def test_copies_and_pickles_share_or_carry_the_schedule(rows):
    transform = SADATransform(size=32, mean=MEAN, std=STD, config=SADAConfig(augmentation_seed=2))
    assert copy.deepcopy(transform).schedule is transform.schedule  # datasets' with_transform deep-copies
    clone = pickle.loads(pickle.dumps(transform))
    assert torch.equal(run(clone, rows), run(transform, rows))


def _image(mode: str, size=(20, 14)) -> Image.Image:
    rng = np.random.default_rng(0)
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, size[::-1], dtype=np.uint16))  # mode I;16
    rgba = Image.fromarray(rng.integers(0, 256, (*size[::-1], 4), dtype=np.uint8), mode="RGBA")
    return rgba.convert(mode) if mode != "P" else rgba.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16", "1", "RGB"])
def test_every_mode_decodes_to_rgb(mode):
    out = to_rgb(_image(mode))
    assert out.mode == "RGB" and out.size == (20, 14)


def test_sixteen_bit_images_keep_their_high_byte():
    values = np.arange(0, 65536, 257, dtype=np.uint16).reshape(16, 16)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    out = np.asarray(to_rgb(image))
    assert np.array_equal(out[..., 0], (values >> 8).astype(np.uint8))


def test_encoded_and_array_cells_decode():
    buffer = io.BytesIO()
    _image("RGB").save(buffer, format="PNG")
    assert to_rgb({"bytes": buffer.getvalue(), "path": None}).size == (20, 14)
    assert to_rgb(np.zeros((5, 6, 3), dtype=np.uint8)).size == (6, 5)
    with pytest.raises(TypeError, match="datasets.Image"):
        to_rgb("not an image")


@pytest.mark.parametrize("crop", ["random_crop", "random_resized_crop", "none"])
def test_any_size_and_mode_comes_out_at_the_target_size(crop):
    images = [_image("L", (1, 1)), _image("RGBA", (8, 8)), _image("P", (50, 20)), _image("CMYK", (20, 50))]
    batch = {"image": images, "label": [0, 1, 2, 3], "index": [0, 1, 2, 3]}
    out = SADATransform(size=(24, 16), crop=crop)(batch)
    assert out["pixel_values"].shape == (4, 3, 24, 16)
    assert torch.isfinite(out["pixel_values"]).all()


def test_random_resized_crop_boxes_lie_inside_the_image():
    transform = SADATransform(size=16, crop="random_resized_crop", scale=(0.3, 1.0))
    for seed in range(200):
        left, top, right, bottom = transform._crop_box(random.Random(seed), (40, 30))
        assert 0 <= left < right <= 40 and 0 <= top < bottom <= 30
        assert (right - left) * (bottom - top) >= 0.3 * 40 * 30 * 0.9


def test_image_processor_gives_size_mean_and_std():
    processor = ViTImageProcessor(size={"height": 48, "width": 40}, image_mean=MEAN, image_std=STD)
    transform = SADATransform(processor)
    assert transform.size == (48, 40)
    assert transform.model_input.mean == MEAN and transform.model_input.std == STD
    assert SADATransform(processor, size=32).size == (32, 32)


def test_missing_columns_name_the_fix(rows):
    batch = {k: v for k, v in rows.items() if k != "index"}
    with pytest.raises(KeyError, match="add_column"):
        SADATransform(size=32)(batch)
    with pytest.raises(KeyError, match="label_column"):
        SADATransform(size=32, label_column="fine_label")(rows)


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="crop"):
        SADATransform(size=32, crop="center")
    with pytest.raises(ValueError, match="size"):
        SADATransform()


def test_eval_transform_resizes_and_normalises(rows):
    transform = SADATransform(size=16, mean=MEAN, std=STD).for_evaluation()
    assert isinstance(transform, EvalTransform)
    out = transform(rows)
    expected = np.stack([np.asarray(fit(to_rgb(im), (16, 16)), dtype=np.float64) / 255 for im in rows["image"]])
    expected = (expected - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(out["pixel_values"].permute(0, 2, 3, 1).numpy(), expected, atol=1e-5)
    assert out["labels"] == rows["label"] and "index" not in out
