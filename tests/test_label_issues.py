"""Label-issue suspects from a run's own dynamics: the training-step scores (every run) and the probes'
scores against float64 recomputations from the logits, flipped labels ranked first, the command on the
main job's output, and bad input that gets one clear line."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from sada_hf import SADAConfig, SADAState, SADATrainer, SADATransform, data_map, label_issues
from sada_hf.cli import main, train
from sada_hf.data import load_digits
from sada_hf.label_issues import CUTOFF, CUTOFFS, RANKING_WITH_PROBES, RANKINGS, SHEET, rank_label_issues
from sada_hf.persistence import SUMMARY_FILE
from sada_hf.probe import Probe

from conftest import tiny_resnet, training_args

EPOCHS = 12


@pytest.fixture(scope="module")
def noisy_digits_run(tmp_path_factory):
    """Digits with 10% of the training labels flipped to another class, probed at each epoch end; the
    training steps' and the probes' logits recorded on the side."""
    train_split = load_digits(seed=0)["train"]
    rng = np.random.default_rng(0)
    labels = np.array(train_split["label"])
    flipped = rng.choice(len(labels), len(labels) // 10, replace=False)
    labels[flipped] = (labels[flipped] + rng.integers(1, 10, len(flipped))) % 10
    noisy = train_split.remove_columns("label").add_column("label", labels.tolist())
    noisy = noisy.cast_column("label", train_split.features["label"])

    probes, steps = [], []
    original_run, original_observe = Probe.run, SADAState.observe

    def recording_run(self, *args, **kwargs):
        indices, logits = original_run(self, *args, **kwargs)
        probes.append((indices.clone(), logits.double().clone()))
        return indices, logits

    def recording_observe(self, indices, logits):
        steps.append((self.epoch, indices.clone(), logits.double().clone()))
        return original_observe(self, indices, logits)

    Probe.run, SADAState.observe = recording_run, recording_observe
    try:
        output_dir = tmp_path_factory.mktemp("noisy")
        config = SADAConfig(influence="probe", window=2, normalization="rank")
        transform = SADATransform(size=32, mean=(0.5,) * 3, std=(0.5,) * 3, horizontal_flip=False, config=config)
        trainer = SADATrainer(
            model=tiny_resnet(),
            args=training_args(
                output_dir, num_train_epochs=EPOCHS, per_device_train_batch_size=64, learning_rate=3e-3
            ),
            train_dataset=noisy.with_transform(transform),
        )
        trainer.train()
    finally:
        Probe.run, SADAState.observe = original_run, original_observe
    return trainer, labels, flipped, probes, steps


def scores(logits: torch.Tensor, labels: np.ndarray) -> dict[str, np.ndarray]:
    """AUM and Dataset Cartography's statistics in float64 from visits x N x K logits."""
    target = torch.from_numpy(labels)[None, :, None].expand(logits.shape[0], -1, 1)
    gold = logits.gather(2, target).squeeze(2)
    best_other = logits.scatter(2, target, float("-inf")).max(2).values
    probability = torch.softmax(logits, 2).gather(2, target).squeeze(2)
    return {
        "aum": (gold - best_other).mean(0).numpy(),
        "confidence": probability.mean(0).numpy(),
        "variability": probability.std(0, unbiased=False).numpy(),
        "correctness": (logits.argmax(2) == torch.from_numpy(labels)).double().mean(0).numpy(),
        "predicted": logits[-1].argmax(1).numpy(),
    }


def test_training_step_scores_match_a_float64_recomputation_from_the_logged_logits(noisy_digits_run):
    trainer, labels, _, _, steps = noisy_digits_run
    n = len(labels)
    logits = torch.full((EPOCHS, n, 10), float("nan"), dtype=torch.float64)
    for epoch, indices, batch in steps:
        logits[epoch, indices] = batch  # the default sampler visits each example once per epoch
    assert not torch.isnan(logits).any()
    issues = trainer.label_issues().sort("index")
    assert issues["index"] == list(range(n)) and issues["step_visits"] == [EPOCHS] * n
    expected = scores(logits, labels)
    for name in ("aum", "confidence", "variability", "correctness"):
        np.testing.assert_allclose(issues[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert issues["predicted_label"] == expected["predicted"].tolist() and issues["given_label"] == labels.tolist()
    assert issues["suspect"] == CUTOFFS[CUTOFF]({**expected, "label": labels}).tolist()


def test_probe_scores_match_a_float64_recomputation_from_the_probe_logits(noisy_digits_run):
    trainer, labels, _, probes, _ = noisy_digits_run
    stats = data_map(trainer.args.output_dir)
    assert len(probes) == EPOCHS and stats["probes"].tolist() == [EPOCHS] * len(labels)
    logits = torch.stack([logits[torch.argsort(indices)] for indices, logits in probes])  # probes x N x K
    expected = scores(logits, labels)
    for name in ("aum", "confidence", "variability", "correctness"):
        np.testing.assert_allclose(stats[f"probe_{name}"], expected[name], rtol=1e-5, atol=1e-5, err_msg=name)
    assert stats["probe_predicted"].tolist() == expected["predicted"].tolist()
    issues = trainer.label_issues().sort("index")
    np.testing.assert_allclose(issues["probe_aum"], expected["aum"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("source", list(RANKINGS))
def test_flipped_labels_are_ranked_first(noisy_digits_run, source):
    trainer, labels, flipped, _, _ = noisy_digits_run
    issues = trainer.label_issues(ranking=source)
    assert issues["score"] == sorted(issues["score"])
    ranking = np.array(issues["index"])
    is_flipped = np.isin(ranking, flipped)
    precision_at_k = is_flipped[: len(flipped)].mean()
    # AUROC: the chance that a flipped example ranks before a clean one.
    positions = np.arange(len(ranking))
    auroc = 1 - (positions[is_flipped][:, None] > positions[~is_flipped][None, :]).mean()
    assert precision_at_k >= 0.7 and auroc >= 0.95, (precision_at_k, auroc)  # random: 0.1 and 0.5


# Five examples whose flags were worked out by hand: given label 0 0 2 1 4, last prediction 1 0 2 1 3.
HAND_STATS = {
    "aum": np.array([-1.0, 0.0, 0.5, -0.2, 2.0]),
    "probe_aum": np.array([0.3, np.nan, -0.4, 0.1, 0.2]),
    "correctness": np.array([0.0, 0.2, 0.25, 0.5, 1.0]),
    "label": np.array([0, 0, 2, 1, 4]),
    "predicted": np.array([1, 0, 2, 1, 3]),
}
HAND_SUSPECTS = {
    "aum_below_0": [1, 0, 0, 1, 0],
    "aum_below_0_and_wrong_last": [1, 0, 0, 0, 0],
    "right_under_half": [1, 1, 1, 0, 0],
    "right_under_quarter": [1, 1, 0, 0, 0],  # 0.25 itself is not under a quarter
    "never_right": [1, 0, 0, 0, 0],
    "wrong_last": [1, 0, 0, 0, 1],
}
HAND_SCORES = {
    "aum": [-1.0, 0.0, 0.5, -0.2, 2.0],
    "probe_aum": [0.3, np.nan, -0.4, 0.1, 0.2],
    # ranks of aum (0, 2, 3, 1, 4) / 4 plus ranks of the defined probe_aum (3, -, 0, 1, 2) / 3
    "aum_and_probe_aum": [0 / 4 + 3 / 3, np.nan, 3 / 4 + 0 / 3, 1 / 4 + 1 / 3, 4 / 4 + 2 / 3],
}


def test_every_cut_off_and_ranking_on_a_hand_computed_case():
    assert HAND_SUSPECTS.keys() == CUTOFFS.keys() and HAND_SCORES.keys() == RANKINGS.keys()  # a new rule needs a case
    for name, rule in CUTOFFS.items():
        assert rule(HAND_STATS).astype(int).tolist() == HAND_SUSPECTS[name], name
    for name, rule in RANKINGS.items():  # fed only the statistics it declares (refusals rely on them)
        declared = {statistic: HAND_STATS[statistic] for statistic in rule.reads}
        np.testing.assert_allclose(rule(declared), HAND_SCORES[name], err_msg=name)


def test_a_chosen_ranking_orders_the_suspects_and_must_fit_the_run():
    stats = {**HAND_STATS, "index": np.arange(5), "step_visits": np.full(5, 3)}
    for name, scores_by_hand in HAND_SCORES.items():  # NaN (an example never probed) ranks last
        assert rank_label_issues(stats, name)["index"] == np.argsort(scores_by_hand, kind="stable").tolist(), name
    assert rank_label_issues(stats)["index"] == rank_label_issues(stats, RANKING_WITH_PROBES)["index"]
    with pytest.raises(ValueError, match="Unknown ranking 'margin': choose one of aum, probe_aum"):
        rank_label_issues(stats, "margin")
    without_probes = {name: value for name, value in stats.items() if name != "probe_aum"}
    for name in ("probe_aum", "aum_and_probe_aum"):
        with pytest.raises(ValueError, match=f"{name}' needs the probes' dynamics.*influence='probe'"):
            rank_label_issues(without_probes, name)


def test_label_issues_is_a_ranked_dataset(noisy_digits_run):
    issues = noisy_digits_run[0].label_issues()
    assert isinstance(issues, datasets.Dataset)
    assert issues["score"] == sorted(issues["score"]) and len(issues) == len(noisy_digits_run[1])


def test_the_command_on_a_default_run_without_probes(tmp_path, capsys):
    quick = ["--num_train_epochs", "3", "--max_train_samples", "120", "--max_eval_samples", "50"]
    train(["--output_dir", str(tmp_path), "--disable_tqdm", "true", *quick])
    card = (tmp_path / "README.md").read_text()
    assert "### Training dynamics and label issues" in card and f"({SHEET})" in card
    capsys.readouterr()
    main(["label-issues", str(tmp_path)])
    assert str(tmp_path / SHEET) in capsys.readouterr().out  # the run's own sheet, drawn at the end of training
    for top in (5, 20):  # a sheet of K, drawn from the run's thumbnails: 1.6 x 1.9 inches per image at 110 dpi
        main(["label-issues", str(tmp_path), "--top", str(top)])
        with Image.open(tmp_path / f"sada_label_issues_top_{top}.png") as drawn:
            assert drawn.size == (round(110 * 1.6 * min(8, top)), round(110 * 1.9 * -(-top // 8)))
    printed = capsys.readouterr().out
    table = [line for line in printed.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(table) == 25 and str(tmp_path / "sada_label_issues_top_20.png") in printed
    ranking = label_issues(tmp_path)
    assert [int(line.split("|")[2]) for line in table[:5]] == ranking["row"][:5]
    assert f"{sum(ranking['suspect']):,} of {len(ranking):,} training examples" in card  # the card's count
    with pytest.raises(SystemExit, match=r"^sada-hf label-issues: Ranking 'probe_aum' needs the probes'[^\n]*$"):
        main(["label-issues", str(tmp_path), "--ranking", "probe_aum"])
    with Image.open(tmp_path / SHEET) as sheet:
        assert sheet.format == "PNG" and sheet.size[0] > 300


def test_a_run_from_any_script_leaves_its_label_issues_behind(tmp_path, cifar_train):
    trainer = SADATrainer(
        model=tiny_resnet(),
        args=training_args(tmp_path, num_train_epochs=2),
        train_dataset=cifar_train.with_transform(SADATransform(size=32, config=SADAConfig(strategy="none"))),
    )
    trainer.train()  # no save_model, no card: the end of training writes them
    for name in (SUMMARY_FILE, SHEET, "sada_data_map.png"):
        assert (tmp_path / name).is_file(), name
    assert label_issues(tmp_path)["index"] == trainer.label_issues()["index"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["/nonexistent/run"], "/nonexistent/run does not exist"),
        (["{empty}"], f"No {SUMMARY_FILE} in"),
        (["{damaged}"], f"Cannot read .*{SUMMARY_FILE}.*Delete it"),
    ],
)
def test_bad_input_to_the_command_is_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / SUMMARY_FILE).write_bytes(b"PAR1 not really parquet")
    argv = [a.format(empty=tmp_path / "empty", damaged=tmp_path / "damaged") for a in argv]
    with pytest.raises(SystemExit, match=rf"^sada-hf label-issues: .*{message}") as exit_info:
        main(["label-issues", *argv])
    assert "\n" not in str(exit_info.value)


def test_top_must_be_positive(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["label-issues", str(tmp_path), "--top", "0"])
    assert exit_info.value.code == 2 and "--top: must be a whole number >= 1, got 0" in capsys.readouterr().err


def test_an_inactive_trainer_names_the_fix(tmp_path, cifar_train):
    trainer = SADATrainer(
        model=tiny_resnet(), args=training_args(tmp_path, num_train_epochs=1), train_dataset=cifar_train
    )
    with pytest.raises(ValueError, match="SADATransform"):
        trainer.label_issues()
