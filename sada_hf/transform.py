"""Dataset transforms for `datasets.Dataset.set_transform`.

`SADATransform` (training): decode -> base augmentation (random crop + horizontal flip, or your own
pipeline) -> one op of the SADA space at the example's strength -> model input. Every random choice for
a visit is drawn from a generator seeded by (seed, epoch, index) alone, so the same image comes out
whatever the number of dataloader workers or processes. `EvalTransform`: decode -> resize -> model input.
"""

from __future__ import annotations

import copy
import io
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from .config import SADAConfig
from .ops import apply_op
from .strategies import STRATEGIES
from .strengths import KEEP_LABEL, StrengthSchedule

CROPS = ("random_crop", "random_resized_crop", "none")
_RESIZE = Image.Resampling.BILINEAR


def to_rgb(image: Any) -> Image.Image:
    """Decode one image cell (PIL image, `{"bytes"|"path": ...}` dict, or uint8 array) to RGB.

    16-bit images (I;16*) keep their 8 most significant bits; palette images go through RGBA so that
    transparency is honoured; every other mode is converted by Pillow.
    """
    if isinstance(image, dict):
        if image.get("bytes") is not None:
            image = Image.open(io.BytesIO(image["bytes"]))
        elif image.get("path"):
            image = Image.open(image["path"])
    elif isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise TypeError(
            f"Expected a PIL image, an image dict with 'bytes' or 'path', or a uint8 array; got {type(image).__name__}. "
            "Cast the column to `datasets.Image()`."
        )
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16"):
        image = Image.fromarray((np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8))
    elif image.mode == "P":
        image = image.convert("RGBA")
    return image.convert("RGB")


def fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize the shorter side to the target and centre-crop to `size` (height, width)."""
    height, width = size
    if image.size == (width, height):
        return image
    scale = max(width / image.width, height / image.height)
    resized = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    image = image.resize(resized, _RESIZE)
    left, top = (resized[0] - width) // 2, (resized[1] - height) // 2
    return image.crop((left, top, left + width, top + height))


class _ModelInput:
    """Turns RGB images of the target size into normalised `pixel_values` (B x 3 x H x W, float32)."""

    def __init__(self, image_processor: Any, size: int | Sequence[int] | None, mean, std) -> None:
        if image_processor is not None:
            size = size if size is not None else processor_size(image_processor)
            if getattr(image_processor, "do_normalize", True):
                mean = mean if mean is not None else image_processor.image_mean
                std = std if std is not None else image_processor.image_std
        if size is None:
            raise ValueError("Give `size` (e.g. 32 or (224, 224)) or an `image_processor` to read it from.")
        self.size: tuple[int, int] = (size, size) if isinstance(size, int) else tuple(size)
        self.mean = tuple(float(m) for m in (mean if mean is not None else (0.0, 0.0, 0.0)))
        self.std = tuple(float(s) for s in (std if std is not None else (1.0, 1.0, 1.0)))
        mean_t, std_t = torch.tensor(self.mean), torch.tensor(self.std)
        # pixel / 255 then (x - mean) / std, fused into one multiply-add.
        self._scale = (1.0 / (255.0 * std_t)).view(1, 3, 1, 1)
        self._shift = (-mean_t / std_t).view(1, 3, 1, 1)

    def __call__(self, images: list[Image.Image]) -> torch.Tensor:
        # Reorder to channels-first while still uint8, then convert: 2-3x faster than converting first.
        batch = torch.from_numpy(np.stack([np.asarray(image) for image in images]))
        return batch.permute(0, 3, 1, 2).contiguous().to(torch.float32).mul_(self._scale).add_(self._shift)


def processor_size(image_processor: Any) -> tuple[int, int]:
    """Target size of an HF image processor, read as the HF image-classification example does."""
    size = image_processor.size
    if "shortest_edge" in size:
        return (size["shortest_edge"], size["shortest_edge"])
    return (size["height"], size["width"])


@dataclass(frozen=True)
class Draw:
    """The random choices of one visit of one example."""

    op: str
    sign: int
    warmup_strength: float
    flip: bool
    crop: tuple[int, int, int, int]  # left, top, right, bottom in the source frame
    base_seed: int  # seeds torch's generator around `base_transforms` (drawn last, so older draws keep theirs)


class SADATransform:
    """Training transform for `datasets.Dataset.set_transform`, driven by SADA strengths.

    Outputs `pixel_values`, `labels` (also under the label column's own name) and the index column.
    Unbound (no trainer) the transform applies the warm-up behaviour (`config.warmup_strength`);
    `SADATrainer` binds a copy of it to the strengths it publishes.

    Args:
        image_processor: an HF image processor (e.g. `ViTImageProcessor`) to read size, mean and std from.
        size: output size, int or (height, width); overrides the processor's.
        mean, std: per-channel normalisation; override the processor's (default: none).
        crop: base crop: 'random_crop' (the default: pad `crop_padding` px, default size/8, and crop back,
            as on CIFAR), 'random_resized_crop' (area `scale`, as on ImageNet) or 'none' (resize only).
        horizontal_flip: flip with probability 1/2 (the default; turn off for digits or text).
        base_transforms: your own base augmentation instead of `crop` and `horizontal_flip`, PIL image in,
            PIL image out (e.g. torchvision v2 `Compose([RandomResizedCrop(224), RandomHorizontalFlip()])`);
            the SADA op follows it. Its draws come from torch's generator, seeded for each visit from
            (seed, epoch, index) and restored afterwards; draws from Python's `random` or numpy are not
            seeded. An output of another size is resized and centre-cropped to `size`.
        image_column, label_column, index_column: dataset column names.
        id_column: a column naming each example (a file name, a database key): label issues and the
            per-example summary carry it as `id` (default: the image's file path when the images are stored
            as paths, as in imagefolder datasets; else no id).
        config: the SADA configuration (op space, magnitudes, warm-up, seed).
    """

    def __init__(
        self,
        image_processor: Any = None,
        *,
        size: int | Sequence[int] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        crop: str | None = None,
        crop_padding: int | None = None,
        scale: tuple[float, float] = (0.08, 1.0),
        horizontal_flip: bool | None = None,
        base_transforms: Callable[[Image.Image], Image.Image] | None = None,
        image_column: str = "image",
        label_column: str = "label",
        index_column: str = "index",
        id_column: str | None = None,
        config: SADAConfig | None = None,
    ) -> None:
        if base_transforms is not None and (crop is not None or horizontal_flip is not None):
            raise ValueError(
                "`base_transforms` replace `crop` and `horizontal_flip`: drop those two, or put the crop and "
                "flip in your pipeline."
            )
        if base_transforms is not None and not callable(base_transforms):
            raise TypeError(
                f"`base_transforms` must be callable (PIL image in, PIL image out), got {base_transforms!r}."
            )
        crop = ("none" if base_transforms is not None else "random_crop") if crop is None else crop
        if crop not in CROPS:
            raise ValueError(f"`crop` must be one of {list(CROPS)}, got {crop!r}.")
        if not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"`scale` must satisfy 0 < min <= max <= 1, got {scale!r}.")
        self.model_input = _ModelInput(image_processor, size, mean, std)
        self.crop = crop
        height, width = self.model_input.size
        self.crop_padding = round(min(height, width) / 8) if crop_padding is None else crop_padding
        if self.crop_padding < 0:
            raise ValueError(f"`crop_padding` must be >= 0, got {self.crop_padding}.")
        self.scale = tuple(scale)
        self.horizontal_flip = base_transforms is None if horizontal_flip is None else horizontal_flip
        self.base_transforms = base_transforms
        self.image_column = image_column
        self.label_column = label_column
        self.index_column = index_column
        self.id_column = id_column
        self.config = config if config is not None else SADAConfig()
        self.schedule = StrengthSchedule()

    @property
    def size(self) -> tuple[int, int]:
        """Output size (height, width)."""
        return self.model_input.size

    @property
    def seed(self) -> int:
        """Seed of the augmentation draws (`config.augmentation_seed`, 0 when unset)."""
        return 0 if self.config.augmentation_seed is None else self.config.augmentation_seed

    def bound_to(self, schedule: StrengthSchedule, config: SADAConfig) -> SADATransform:
        """A copy that reads its epoch and strengths from `schedule` and uses `config` (SADATrainer's)."""
        bound = copy.copy(self)
        bound.schedule = schedule
        bound.config = config
        return bound

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch the draws depend on (SADATrainer does this; with a plain `Trainer` use
        `TransformEpochCallback`)."""
        self.schedule.set_epoch(epoch)

    def __call__(self, batch: dict[str, list]) -> dict[str, Any]:
        for column in (self.image_column, self.label_column, self.index_column):
            if column not in batch:
                raise KeyError(
                    f"SADATransform needs the column {column!r}, but the batch has {sorted(batch)}. Set "
                    f"`image_column`/`label_column` to your column names; the index column (row positions "
                    "0..N-1) is added by SADATrainer, or by `dataset.add_column('index', range(len(dataset)))`."
                )
        indices = [int(i) for i in batch[self.index_column]]
        epoch = int(self.schedule.epoch)
        strengths, label_overrides = self.schedule.lookup_visits(indices)
        images = []
        for image, index, strength in zip(batch[self.image_column], indices, strengths):
            image = to_rgb(image)
            draw = self.draw(random.Random(_visit_key(self.seed, epoch, index)), image.size)
            images.append(self.apply(image, draw, strength))
        # The label trained on: the dataset's, unless the run drops or relabels the example (label issues).
        labels = [
            label if override == KEEP_LABEL else override
            for label, override in zip(batch[self.label_column], label_overrides)
        ]
        # The label also stays under its own column name: collators copied from Hugging Face's examples
        # read `example[label_column]`; DefaultDataCollator turns either name into `labels`.
        return {
            "pixel_values": self.model_input(images),
            "labels": labels,
            self.label_column: labels,
            self.index_column: indices,
        }

    def draw(self, rng: random.Random, image_size: tuple[int, int]) -> Draw:
        """Every random choice of one visit, in a fixed order: op, sign, warm-up strength, flip, crop,
        the seed of `base_transforms`. Each takes the same draws whatever the config, so strategies and
        op spaces compared at one seed share their crops and flips; the op and sign do not depend on the
        image size."""
        op = self.config.ops[int(rng.random() * len(self.config.ops))]
        sign = 1 if rng.random() < 0.5 else -1
        warmup_strength = rng.random()
        flip = rng.random() < 0.5
        crop = self._crop_box(rng, image_size)
        return Draw(op, sign, warmup_strength, flip, crop, base_seed=rng.getrandbits(63))

    def apply(self, image: Image.Image, draw: Draw, strength: float) -> Image.Image:
        """The deterministic pipeline for one visit: base augmentation, then the op at `strength`
        (NaN: warm-up strength)."""
        if self.base_transforms is not None:
            image = fit(self._user_base(image, draw.base_seed), self.size)
        elif self.crop == "random_resized_crop":
            image = image.crop(draw.crop).resize((self.size[1], self.size[0]), _RESIZE)
        else:
            image = fit(image, self.size)
            if self.crop == "random_crop":
                image = image.crop(draw.crop)  # Pillow fills outside the image with black: pad + crop
        if self.horizontal_flip and draw.flip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if not STRATEGIES[self.config.strategy].applies_op:
            return image
        if math.isnan(strength):
            warmup = self.config.warmup_strength
            strength = draw.warmup_strength if warmup is None else warmup
        return apply_op(image, draw.op, strength, draw.sign, self.config.magnitudes.get(draw.op))

    def _user_base(self, image: Image.Image, seed: int) -> Image.Image:
        """`base_transforms` with torch's generator seeded by the visit; the caller's generator state is
        restored afterwards."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            image = self.base_transforms(image)
        if not isinstance(image, Image.Image):
            raise TypeError(
                f"`base_transforms` must return a PIL image, got {type(image).__name__}: leave out ToImage, "
                "ToDtype and Normalize (SADATransform makes the model input after the SADA op)."
            )
        return image

    def _crop_box(self, rng: random.Random, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
        height, width = self.size
        if self.crop == "random_crop":
            pad = self.crop_padding
            left, top = rng.randint(0, 2 * pad) - pad, rng.randint(0, 2 * pad) - pad
            return (left, top, left + width, top + height)
        if self.crop == "random_resized_crop":
            return _random_resized_box(rng, image_size, self.scale)
        return (0, 0, width, height)

    def for_evaluation(self) -> EvalTransform:
        """The matching evaluation transform: same decoding and model input, no augmentation."""
        return EvalTransform(
            size=self.size,
            mean=self.model_input.mean,
            std=self.model_input.std,
            image_column=self.image_column,
            label_column=self.label_column,
        )


def _visit_key(seed: int, epoch: int, index: int) -> int:
    """One integer per (seed, epoch, index), injective for epoch and index below 2**32."""
    return (seed << 64) | (epoch << 32) | index


def _random_resized_box(
    rng: random.Random, image_size: tuple[int, int], scale: tuple[float, float], ratio=(3 / 4, 4 / 3)
) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop box: 10 tries at a random area and aspect ratio, else a
    centred crop at the nearest allowed ratio."""
    width, height = image_size
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        crop_w = round(math.sqrt(target_area * aspect))
        crop_h = round(math.sqrt(target_area / aspect))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
            return (left, top, left + crop_w, top + crop_h)
    in_ratio = width / height
    if in_ratio < ratio[0]:
        crop_w, crop_h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        crop_w, crop_h = round(height * ratio[1]), height
    else:
        crop_w, crop_h = width, height
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return (left, top, left + crop_w, top + crop_h)


class EvalTransform:
    """Evaluation transform for `set_transform`: decode -> resize shorter side and centre-crop ->
    `pixel_values` (plus `labels` when the label column is present)."""

    def __init__(
        self,
        image_processor: Any = None,
        *,
        size: int | Sequence[int] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        image_column: str = "image",
        label_column: str = "label",
    ) -> None:
        self.model_input = _ModelInput(image_processor, size, mean, std)
        self.image_column = image_column
        self.label_column = label_column

    def __call__(self, batch: dict[str, list]) -> dict[str, Any]:
        if self.image_column not in batch:
            raise KeyError(f"EvalTransform needs the column {self.image_column!r}; the batch has {sorted(batch)}.")
        images = [fit(to_rgb(image), self.model_input.size) for image in batch[self.image_column]]
        output: dict[str, Any] = {"pixel_values": self.model_input(images)}
        if self.label_column in batch:
            output["labels"] = list(batch[self.label_column])
        return output
