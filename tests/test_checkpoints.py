"""Which checkpoint folders are complete (sada_hf/checkpoints.py), and how `SADATrainer.train` resumes
around incomplete ones: it skips them with a warning naming each, and refuses to load one it is given."""

from __future__ import annotations

import json
import shutil

import pytest

import sada_hf.trainer as trainer_module
from sada_hf import SADAConfig, SADATrainer, SADATransform
from sada_hf.checkpoints import RECORD_FILE, close_record, incomplete_reason, last_complete, open_record

from conftest import tiny_resnet, training_args


def write_checkpoint(folder, files: dict[str, bytes], close: bool = True) -> None:
    open_record(folder)
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    if close:
        close_record(folder)


FILES = {"model.safetensors": b"weights", "trainer_state.json": b"{}", "sub/rng_state_1.pth": b"rng"}


def test_a_closed_record_lists_every_file_with_its_size(tmp_path):
    folder = tmp_path / "checkpoint-5"
    write_checkpoint(folder, FILES)
    record = json.loads((folder / RECORD_FILE).read_text())
    assert record["complete"] is True
    assert record["files"] == {name: len(content) for name, content in FILES.items()}
    assert incomplete_reason(folder) is None


@pytest.mark.parametrize(
    "damage, reason",
    [
        ("open", "still being written"),
        ("missing", "model.safetensors is missing"),
        ("truncated", "model.safetensors has 3 bytes, not the 7"),
        ("garbled_record", f"its {RECORD_FILE} does not read back"),
    ],
)
def test_an_interrupted_save_or_deletion_is_incomplete(tmp_path, damage, reason):
    folder = tmp_path / "checkpoint-5"
    write_checkpoint(folder, FILES, close=damage != "open")
    if damage == "missing":
        (folder / "model.safetensors").unlink()
    elif damage == "truncated":
        (folder / "model.safetensors").write_bytes(b"wei")
    elif damage == "garbled_record":
        (folder / RECORD_FILE).write_text('{"complete": tr')
    assert reason in incomplete_reason(folder)


def test_folders_without_a_record_are_judged_by_their_trainer_state(tmp_path):
    # As transformers.Trainer and sada_hf < 0.5 write them: trainer_state.json comes after everything else.
    (tmp_path / "complete").mkdir()
    (tmp_path / "complete" / "trainer_state.json").write_text('{"global_step": 5}')
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "trainer_state.json").write_text('{"global_st')
    (tmp_path / "early").mkdir()
    (tmp_path / "early" / "config.json").write_text("{}")
    assert incomplete_reason(tmp_path / "complete") is None
    assert "does not read back" in incomplete_reason(tmp_path / "cut")
    assert "no trainer_state.json" in incomplete_reason(tmp_path / "early")


def test_last_complete_is_the_newest_complete_with_the_newer_incomplete_ones(tmp_path):
    for step, close in [(5, True), (10, True), (15, False), (20, False)]:
        write_checkpoint(tmp_path / f"checkpoint-{step}", FILES, close=close)
    (tmp_path / "checkpoint-best").mkdir()  # not a checkpoint-N folder: never considered
    (tmp_path / "notes.txt").write_text("")
    complete, skipped = last_complete(tmp_path)
    assert complete.step == 10 and complete.path == tmp_path / "checkpoint-10"
    assert [c.step for c in skipped] == [20, 15]
    assert last_complete(tmp_path / "absent") == (None, [])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cifar_train):
    """A run with checkpoints at steps 10 and 20; the one at step 20 then left incomplete."""
    output = tmp_path_factory.mktemp("trained")
    make_trainer(output, cifar_train).train()
    (output / "checkpoint-20" / "optimizer.pt").unlink()
    return output


def make_trainer(output, dataset, **overrides) -> SADATrainer:
    transform = SADATransform(size=32, mean=(0.5,) * 3, std=(0.5,) * 3, config=SADAConfig(window=2))
    args = {"num_train_epochs": 2, "save_strategy": "epoch", **overrides}
    return SADATrainer(
        model=tiny_resnet(), args=training_args(output, **args), train_dataset=dataset.with_transform(transform)
    )


def test_resume_true_skips_the_incomplete_checkpoint_with_a_warning_naming_it(trained, cifar_train, monkeypatch):
    warnings = []
    monkeypatch.setattr(trainer_module.logger, "warning", lambda message, *a, **k: warnings.append(message))
    trainer = make_trainer(trained, cifar_train, num_train_epochs=1)  # ends where checkpoint-10 is: no step
    trainer.train(resume_from_checkpoint=True)
    skipped = [w for w in warnings if "incomplete" in w]
    assert skipped == [f"Skipping the incomplete checkpoint {trained / 'checkpoint-20'}: optimizer.pt is missing "
                       "(the save or a deletion was interrupted)."]  # fmt: skip
    assert trainer.state.global_step == 10  # resumed from checkpoint-10
    assert not (trained / "checkpoint-20" / "optimizer.pt").exists()  # skipped, never repaired or deleted


def test_a_checkpoint_whose_save_did_not_finish_is_refused_by_path(trained, tmp_path, cifar_train):
    unfinished = tmp_path / "checkpoint-20"
    shutil.copytree(trained / "checkpoint-20", unfinished)
    open_record(unfinished)  # as a kill before the record was closed leaves it
    trainer = make_trainer(tmp_path, cifar_train)
    with pytest.raises(ValueError, match=r"checkpoint-20: the checkpoint is incomplete \(it was still being written"):
        trainer.train(resume_from_checkpoint=str(unfinished))
    assert trainer.state.global_step == 0


def test_a_finished_checkpoint_changed_since_resumes_by_path_with_a_warning(trained, cifar_train, monkeypatch):
    """Files changed on purpose after the save (here: the optimizer removed, which Trainer tolerates; weights
    re-sharded in Hugging Face's own tests) do not stop a resume the user asked for by path."""
    warnings = []
    monkeypatch.setattr(trainer_module.logger, "warning", lambda message, *a, **k: warnings.append(message))
    trainer = make_trainer(trained, cifar_train)
    trainer.train(resume_from_checkpoint=str(trained / "checkpoint-20"))
    assert trainer.state.global_step == 20
    assert f"Resuming from {trained / 'checkpoint-20'} as asked, although it differs from the checkpoint that was " \
        "saved: optimizer.pt is missing (the save or a deletion was interrupted)." in warnings  # fmt: skip


def test_resume_true_without_a_complete_checkpoint_is_refused(tmp_path, cifar_train):
    write_checkpoint(tmp_path / "checkpoint-10", FILES, close=False)
    trainer = make_trainer(tmp_path, cifar_train)
    with pytest.raises(ValueError, match="No valid checkpoint found .* no complete checkpoint to resume from"):
        trainer.train(resume_from_checkpoint=True)
