"""The SADA augmentation space (paper Table 8): 14 Pillow operations applied at a strength in [0, 1].

Every op with a magnitude is the identity at strength 0 and reaches its maximum magnitude at
strength 1; signed ops take a sign drawn by the caller. Geometric ops fill with black and use
NEAREST resampling, as TrivialAugment does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageEnhance, ImageOps

_FILL = (0, 0, 0)
_RESAMPLE = Image.Resampling.NEAREST


def _affine(img: Image.Image, matrix: tuple[float, ...]) -> Image.Image:
    return img.transform(img.size, Image.Transform.AFFINE, matrix, resample=_RESAMPLE, fillcolor=_FILL)


# One line per op; `arg` is the Pillow argument computed by the op's `to_argument` below.
def _identity(img: Image.Image, arg: float) -> Image.Image:
    return img


def _auto_contrast(img: Image.Image, arg: float) -> Image.Image:
    return ImageOps.autocontrast(img)


def _equalize(img: Image.Image, arg: float) -> Image.Image:
    return ImageOps.equalize(img)


def _color(img: Image.Image, arg: float) -> Image.Image:
    return ImageEnhance.Color(img).enhance(arg)


def _contrast(img: Image.Image, arg: float) -> Image.Image:
    return ImageEnhance.Contrast(img).enhance(arg)


def _brightness(img: Image.Image, arg: float) -> Image.Image:
    return ImageEnhance.Brightness(img).enhance(arg)


def _sharpness(img: Image.Image, arg: float) -> Image.Image:
    return ImageEnhance.Sharpness(img).enhance(arg)


def _rotate(img: Image.Image, arg: float) -> Image.Image:
    return img.rotate(arg, resample=_RESAMPLE, fillcolor=_FILL)


def _translate_x(img: Image.Image, arg: float) -> Image.Image:
    return _affine(img, (1, 0, arg, 0, 1, 0))


def _translate_y(img: Image.Image, arg: float) -> Image.Image:
    return _affine(img, (1, 0, 0, 0, 1, arg))


def _shear_x(img: Image.Image, arg: float) -> Image.Image:
    return _affine(img, (1, arg, 0, 0, 1, 0))


def _shear_y(img: Image.Image, arg: float) -> Image.Image:
    return _affine(img, (1, 0, 0, arg, 1, 0))


def _solarize(img: Image.Image, arg: float) -> Image.Image:
    return ImageOps.solarize(img, int(arg))


def _posterize(img: Image.Image, arg: float) -> Image.Image:
    return ImageOps.posterize(img, int(arg))


# Magnitude m (= sign * strength * max_magnitude) -> Pillow argument, with its range at the default maximum.
def _enhance_factor(m: float, img: Image.Image) -> float:
    return 1.0 + m  # 0.1 .. 1.9; 1 is the identity


def _degrees(m: float, img: Image.Image) -> float:
    return m  # -30 .. 30 degrees


def _shift_x(m: float, img: Image.Image) -> float:
    return m * img.width  # -10/32 .. 10/32 of the width (10 px at 32 px)


def _shift_y(m: float, img: Image.Image) -> float:
    return m * img.height  # -10/32 .. 10/32 of the height


def _shear(m: float, img: Image.Image) -> float:
    return m  # -0.3 .. 0.3


def _threshold(m: float, img: Image.Image) -> float:
    return 256 - round(256 * m)  # 256 (exact identity; 255 is not) .. 0 (invert all)


def _bits(m: float, img: Image.Image) -> float:
    return 8 - round(m)  # 8 (identity) .. 4 bits; Pillow rejects 0


@dataclass(frozen=True)
class _OpSpec:
    apply: Callable[[Image.Image, float], Image.Image]
    to_argument: Callable[[float, Image.Image], float] | None  # None: the op has no magnitude
    max_magnitude: float = 0.0  # default magnitude at strength 1
    magnitude_limit: float = 0.0  # the largest maximum that keeps the Pillow argument valid
    signed: bool = False


_OPS: dict[str, _OpSpec] = {
    "identity": _OpSpec(_identity, None),
    "auto_contrast": _OpSpec(_auto_contrast, None),
    "equalize": _OpSpec(_equalize, None),
    "color": _OpSpec(_color, _enhance_factor, 0.9, 1.0, signed=True),
    "contrast": _OpSpec(_contrast, _enhance_factor, 0.9, 1.0, signed=True),
    "brightness": _OpSpec(_brightness, _enhance_factor, 0.9, 1.0, signed=True),
    "sharpness": _OpSpec(_sharpness, _enhance_factor, 0.9, 1.0, signed=True),
    "rotate": _OpSpec(_rotate, _degrees, 30.0, 180.0, signed=True),
    "translate_x": _OpSpec(_translate_x, _shift_x, 10 / 32, 1.0, signed=True),
    "translate_y": _OpSpec(_translate_y, _shift_y, 10 / 32, 1.0, signed=True),
    "shear_x": _OpSpec(_shear_x, _shear, 0.3, 1.0, signed=True),
    "shear_y": _OpSpec(_shear_y, _shear, 0.3, 1.0, signed=True),
    "solarize": _OpSpec(_solarize, _threshold, 1.0, 1.0),
    "posterize": _OpSpec(_posterize, _bits, 4.0, 7.0),
}

OP_NAMES: tuple[str, ...] = tuple(_OPS)
"""All op names, in the paper's order."""

MAGNITUDE_OPS: tuple[str, ...] = tuple(name for name, spec in _OPS.items() if spec.to_argument is not None)
"""The ops whose effect scales with the strength (the others are applied as they are)."""

DEFAULT_MAX_MAGNITUDES: dict[str, float] = {name: _OPS[name].max_magnitude for name in MAGNITUDE_OPS}
"""Magnitude at strength 1 for each op with a magnitude (paper Table 8)."""

MAGNITUDE_LIMITS: dict[str, float] = {name: _OPS[name].magnitude_limit for name in MAGNITUDE_OPS}
"""The largest maximum magnitude each op accepts."""


def apply_op(
    image: Image.Image, name: str, strength: float, sign: int = 1, max_magnitude: float | None = None
) -> Image.Image:
    """Apply op `name` at `strength` in [0, 1]; `sign` (+1 or -1) matters only for signed ops."""
    spec = _OPS[name]
    if spec.to_argument is None:
        return spec.apply(image, 0.0)
    magnitude = strength * (spec.max_magnitude if max_magnitude is None else max_magnitude)
    if spec.signed:
        magnitude *= sign
    return spec.apply(image, spec.to_argument(magnitude, image))
