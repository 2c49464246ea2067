"""pytest plugin: `transformers.Trainer` is `sada_hf.SADATrainer` for every test module imported after it."""

from __future__ import annotations


def pytest_configure(config) -> None:
    import transformers
    import transformers.trainer

    from sada_hf import SADATrainer

    transformers.Trainer = SADATrainer
    transformers.trainer.Trainer = SADATrainer
