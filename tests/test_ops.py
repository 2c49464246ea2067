"""The 14-op space: identity at strength 0, monotone in strength, the paper's magnitudes at strength 1."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from sada_hf.ops import DEFAULT_MAX_MAGNITUDES, MAGNITUDE_LIMITS, MAGNITUDE_OPS, OP_NAMES, apply_op
from sada_hf.transform import to_rgb

STRENGTHS = [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.fixture(scope="module")
def images(cifar_train):
    """Real CIFAR images at 32x32 and one upscaled to a non-square 48x40."""
    real = [to_rgb(cifar_train[i]["image"]) for i in range(8)]
    return real + [real[0].resize((48, 40), Image.Resampling.BILINEAR)]


def mean_abs_change(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).mean())


def test_the_space_has_the_papers_14_ops():
    assert len(OP_NAMES) == 14
    assert set(OP_NAMES) - set(MAGNITUDE_OPS) == {"identity", "auto_contrast", "equalize"}


@pytest.mark.parametrize("name", MAGNITUDE_OPS)
@pytest.mark.parametrize("sign", [1, -1])
def test_strength_zero_is_the_identity(images, name, sign):
    for image in images:
        out = apply_op(image, name, 0.0, sign)
        assert np.array_equal(np.asarray(out), np.asarray(image)), name


@pytest.mark.parametrize("name", MAGNITUDE_OPS)
@pytest.mark.parametrize("sign", [1, -1])
def test_change_grows_with_strength(images, name, sign):
    changes = np.array(
        [[mean_abs_change(apply_op(image, name, s, sign), image) for s in STRENGTHS] for image in images]
    ).mean(axis=0)
    assert changes[0] == 0
    assert np.all(np.diff(changes) > 0), f"{name} sign {sign}: {changes}"


@pytest.mark.parametrize("name", OP_NAMES)
def test_size_and_mode_are_preserved(images, name):
    for image in images:
        for s in (0.5, 1.0):
            out = apply_op(image, name, s, -1)
            assert out.size == image.size and out.mode == image.mode


def _affine(image, matrix):
    return image.transform(
        image.size, Image.Transform.AFFINE, matrix, resample=Image.Resampling.NEAREST, fillcolor=(0, 0, 0)
    )


def test_strength_one_matches_table_8_by_hand(images):
    image = images[0]  # 32 x 32
    expected = {
        "color": ImageEnhance.Color(image).enhance(1.9),
        "contrast": ImageEnhance.Contrast(image).enhance(1.9),
        "brightness": ImageEnhance.Brightness(image).enhance(1.9),
        "sharpness": ImageEnhance.Sharpness(image).enhance(1.9),
        "rotate": image.rotate(30, resample=Image.Resampling.NEAREST, fillcolor=(0, 0, 0)),
        "translate_x": _affine(image, (1, 0, 10, 0, 1, 0)),  # 10 px at 32 px
        "translate_y": _affine(image, (1, 0, 0, 0, 1, 10)),
        "shear_x": _affine(image, (1, 0.3, 0, 0, 1, 0)),
        "shear_y": _affine(image, (1, 0, 0, 0.3, 1, 0)),
        "solarize": ImageOps.solarize(image, 0),
        "posterize": ImageOps.posterize(image, 4),
        "auto_contrast": ImageOps.autocontrast(image),
        "equalize": ImageOps.equalize(image),
        "identity": image,
    }
    for name, reference in expected.items():
        assert np.array_equal(np.asarray(apply_op(image, name, 1.0, 1)), np.asarray(reference)), name
    low = apply_op(image, "brightness", 1.0, -1)
    assert np.array_equal(np.asarray(low), np.asarray(ImageEnhance.Brightness(image).enhance(0.1)))


@pytest.mark.parametrize("name", MAGNITUDE_OPS)
def test_magnitude_limits_stay_valid_for_pillow(images, name):
    out = apply_op(images[0], name, 1.0, -1, MAGNITUDE_LIMITS[name])
    assert out.size == images[0].size
    assert DEFAULT_MAX_MAGNITUDES[name] <= MAGNITUDE_LIMITS[name]
