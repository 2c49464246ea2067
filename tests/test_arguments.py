"""The job's arguments: one parser for the command and the example, the embedded default's settings."""

from __future__ import annotations

import pytest

from sada_hf.arguments import DEMO_DEFAULTS, parse_train_arguments


def test_demo_defaults_fill_only_what_the_user_left_unset():
    _, _, _, args, _ = parse_train_arguments(["--learning_rate", "0.01"])
    assert args.learning_rate == 0.01 and args.num_train_epochs == DEMO_DEFAULTS["num_train_epochs"]
    assert args.output_dir == "sada-output" and args.eval_strategy == "epoch"
    _, _, _, args, _ = parse_train_arguments(["--builtin_dataset", "cifar10"])
    assert args.num_train_epochs == 3 and args.learning_rate == 5e-5  # Trainer's own defaults
    _, _, sada, _, _ = parse_train_arguments(["--strategy", "random", "--window", "5"])
    assert (sada.strategy, sada.window) == ("random", 5)


def test_help_lists_every_option(capsys):
    """argparse formats help strings with %: a bare percent sign in any help breaks `sada-hf train --help`."""
    with pytest.raises(SystemExit) as exit_info:
        parse_train_arguments(["--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    assert all(
        option in shown for option in ("--label_noise", "--strategy", "--model_name_or_path", "--learning_rate")
    )
