"""Worker script for tests/test_distributed.py, run under `accelerate launch --cpu --num_processes W`.

For each setting it trains a tiny ViT with SADATrainer on 299 real CIFAR-10 images (divisible by neither
2 nor 3), each process keeping only its own examples' store rows. Beside it, every rank feeds a
one-process `InfluenceStore` with every row any rank's store was given (gathered from all ranks), the
reference the shards must add up to. Every rank then writes, under `<setting>/`:
- `final/`: the sharded SADA state (each rank its shard, rank 0 the shared file),
- `rank{r}.safetensors`: its reference stores (influence and margins) and its copies of strengths, V,
  visits and the training-step dynamics, and its label-issue ranking,
- `rank{r}.json`: world size and the directories its checkpoints' SADA state was saved to.
The "resumed" setting resumes "plain" from its epoch-2 checkpoint (of this world size, or, with
`--resume-from`, of another run's) and trains to the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sada_hf import SADAConfig, SADAState, SADATrainer, SADATransform  # noqa: E402
from sada_hf.data import load_cifar10  # noqa: E402
from sada_hf.margins import MarginStore  # noqa: E402
from sada_hf.store import InfluenceStore  # noqa: E402

from conftest import CIFAR10_FIXTURE, tiny_vit, training_args  # noqa: E402

SETTINGS = {
    "plain": dict(),
    "accumulation": dict(gradient_accumulation_steps=2),
    "uneven": dict(accelerator_config={"even_batches": False}),
    "probe": dict(),  # influence="probe", twice per epoch (see CONFIGS)
    "label_issues": dict(),  # suspects dropped from the second half on (see CONFIGS)
    "resumed": dict(),  # "plain", resumed from its epoch-2 checkpoint
}
CONFIGS = {
    "probe": dict(influence="probe", probe_every=0.5),
    "label_issues": dict(label_issue_action="drop", label_issue_start=0.5),
}
NUM_EXAMPLES = 299


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", required=True)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS))
    parser.add_argument("--resume-from", default=None, help="the 'plain' folder of a run with another world size")
    parser.add_argument("--cifar", default=str(CIFAR10_FIXTURE), help="the CIFAR-10 archive (default: the fixture)")
    options = parser.parse_args()
    output = Path(options.output)
    torch.set_num_threads(1)

    saves, reference = [], {}
    original = {name: getattr(SADAState, name) for name in ("save", "observe", "observe_probe")}

    def recording_save(self, directory, write_shared=True):
        saves.append(str(directory))
        original["save"](self, directory, write_shared)

    def everyones(indices, logits):  # each rank's store gets only its own rows: gather them for the reference
        everyone = [None] * dist.get_world_size()
        dist.all_gather_object(everyone, (indices, logits))
        return torch.cat([i for i, _ in everyone]), torch.cat([z for _, z in everyone])

    def observe(self, indices, logits):
        rows = everyones(indices, logits)
        if not self.uses_probe:
            reference["store"].update(*rows, self.epoch)
        reference["margins"].update(*rows, self.epoch)
        return original["observe"](self, indices, logits)

    def observe_probe(self, indices, logits):
        reference["store"].update(*everyones(indices, logits), self.probes_completed)
        return original["observe_probe"](self, indices, logits)

    SADAState.save, SADAState.observe, SADAState.observe_probe = recording_save, observe, observe_probe

    dataset = load_cifar10("train", examples_per_class=30, seed=0, path=options.cifar).select(range(NUM_EXAMPLES))
    for name in options.settings:
        config = SADAConfig(window=2, **CONFIGS.get(name, {}))
        reference["store"] = InfluenceStore(NUM_EXAMPLES, 10, window=2)
        reference["margins"] = MarginStore(torch.tensor(dataset["label"]))
        transform = SADATransform(size=32, mean=(0.5,) * 3, std=(0.5,) * 3, config=config)
        trainer = SADATrainer(
            model=tiny_vit(),
            args=training_args(
                output / name,
                num_train_epochs=options.epochs,
                save_strategy="epoch",
                ddp_find_unused_parameters=False,
                log_level="info",
                log_level_replica="info",
                **SETTINGS[name],
            ),
            train_dataset=dataset.with_transform(transform),
        )
        checkpoint = None
        if name == "resumed":
            plain = Path(options.resume_from) if options.resume_from else output / "plain"
            steps = json.loads((plain / "rank0.json").read_text())["steps_per_epoch"]
            checkpoint = str(plain / f"checkpoint-{2 * steps}")
        trainer.train(resume_from_checkpoint=checkpoint)
        state, rank = trainer.sada_state, trainer.args.process_index
        original["save"](state, output / name / "final", rank == 0)
        replicated = {"strengths": state.strengths, "variance": state.variance, "visits": state.visits}
        replicated.update({"label_overrides": state.schedule.label_overrides, "labels": state.labels})
        replicated.update({f"dynamics.{k}": torch.from_numpy(v) for k, v in state.training_dynamics.items()})
        replicated["ranking"] = torch.tensor(trainer.label_issues()["index"])
        stored = {
            f"reference.{store}.{k}": v.contiguous()
            for store in ("store", "margins")
            for k, v in reference[store].state_dict().items()
        }
        save_file({**replicated, **stored}, str(output / name / f"rank{rank}.safetensors"))
        record = {
            "world_size": trainer.args.world_size,
            "saves": saves,
            "steps_per_epoch": trainer.state.max_steps // options.epochs,
        }
        (output / name / f"rank{rank}.json").write_text(json.dumps(record))
        saves.clear()


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
