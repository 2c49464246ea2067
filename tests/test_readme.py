"""The README's option tables are generated from the dataclasses: this test fails when they drift.

Regenerate them with `python tests/test_readme.py` and paste the output between the markers.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from sada_hf import SADAConfig
from sada_hf.job import DataArguments, ModelArguments
from sada_hf.ops import OP_NAMES

README = Path(__file__).resolve().parents[1] / "README.md"
SECTIONS = {"SADA options (`SADAConfig`)": SADAConfig, "Model options": ModelArguments, "Data options": DataArguments}


def _default(field: dataclasses.Field) -> str:
    value = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
    if value == list(OP_NAMES):
        return "all 14"
    return "`None`" if value is None else f"`{json.dumps(value) if isinstance(value, (list, dict)) else value}`"


def options_tables() -> str:
    blocks = []
    for title, cls in SECTIONS.items():
        rows = [f"**{title}**", "", "| option | default | what it does |", "|---|---|---|"]
        for field in dataclasses.fields(cls):
            help_text = field.metadata["help"].replace("|", "\\|")
            choices = field.metadata.get("choices")
            if choices:
                help_text += " Choices: " + ", ".join(f"`{c}`" for c in choices) + "."
            rows.append(f"| `--{field.name}` | {_default(field)} | {help_text} |")
        blocks.append("\n".join(rows))
    return "\n\n".join(blocks)


def test_readme_option_tables_match_the_dataclasses():
    text = README.read_text()
    match = re.search(r"<!-- options:start -->\n(.*?)\n<!-- options:end -->", text, re.S)
    assert match, "README.md lacks the <!-- options:start --> ... <!-- options:end --> block"
    assert match.group(1).strip() == options_tables().strip(), (
        "README options are stale: run python tests/test_readme.py"
    )


def test_readme_test_command_is_what_ci_runs():
    ci = (README.parent / ".ci" / "run").read_text()
    assert "python -m pytest -q" in README.read_text() and "python -m pytest -q" in ci


if __name__ == "__main__":
    print(options_tables())
