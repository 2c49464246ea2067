"""The results tables of README.md and docs/ are the benchmark scripts' output, regenerated from the results files.

A generated table sits between a marker that names what prints it and `<!-- end -->`:

    <!-- accuracy.py table model=resnet examples_per_class=1000 imbalance_ratio=100 epochs=80 -->

    | strategy | ...

    <!-- end -->

`accuracy.py headline`, `accuracy.py table FIELD=VALUE ...` (the one comparison with those settings),
`label_errors.py headline`, `label_errors.py acting` (what acting on the suspects buys, every cell),
`label_errors.py table FIELD=VALUE ...` (the one cell), `store_shards.py table`
(store traffic), `store_shards.py memory` (memory per process, from the code) and `review_page.py table`
(the review page's size). After a run:

    python benchmarks/doc_tables.py            # rewrites every block from benchmarks/results/

tests/test_docs.py fails when a block differs from what the scripts print, so no table is typed by hand.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy  # noqa: E402
import label_errors  # noqa: E402
import pretrain  # noqa: E402
import review_page  # noqa: E402
import store_shards  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
# A marker, a blank line, the table, a blank line, the end (the blank lines keep the table apart on GitHub).
BLOCK = re.compile(r"(<!-- (\S+ \S+)((?: \S+=\S+)*) -->\n\n)(.*?)(\n\n<!-- end -->)", re.S)


# Tables that take no fields: the command -> what prints it.
_WHOLE_TABLES = {
    "store_shards.py table": store_shards.table_markdown,
    "store_shards.py memory": store_shards.memory_markdown,
    "review_page.py table": review_page.table_markdown,
    "pretrain.py table": pretrain.table_markdown,
}


def _value(text: str) -> object:
    """A marker's value as the results files hold it: None, a number, or the text."""
    if text == "None":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def generate(command: str, fields: dict) -> str:
    """What `command` (e.g. "accuracy.py table") prints for the results its `fields` pick out."""
    if command == "accuracy.py headline":
        return accuracy.headline_markdown(accuracy.grouped(accuracy.RESULTS))
    if command == "accuracy.py table":
        groups = accuracy.grouped(accuracy.RESULTS)
        return accuracy.comparison_markdown(groups, accuracy.find_comparison(groups, fields))
    if command == "label_errors.py headline":
        return label_errors.headline_markdown(label_errors.grouped(label_errors.RESULTS))
    if command == "label_errors.py acting":
        return label_errors.acting_headline_markdown(label_errors.grouped(label_errors.RESULTS))
    if command == "label_errors.py table":
        groups = label_errors.grouped(label_errors.RESULTS)
        return label_errors.cell_markdown(groups[label_errors.find_cell(groups, fields)])
    if command in _WHOLE_TABLES:
        return _WHOLE_TABLES[command]()
    raise ValueError(
        f"Unknown generated table {command!r}: use accuracy.py (headline or table), label_errors.py (headline, acting "
        f"or table), or "
        f"one of {sorted(_WHOLE_TABLES)}"
    )


def _generated(match: re.Match) -> str:
    fields = {name: _value(value) for name, value in (pair.split("=", 1) for pair in match.group(3).split())}
    return generate(match.group(2), fields)


def blocks(text: str) -> list[tuple[str, str, str]]:
    """Every generated block of a page: (its marker, its text now, what the scripts print for it)."""
    return [(match.group(1).strip(), match.group(4), _generated(match)) for match in BLOCK.finditer(text)]


def regenerate(text: str) -> str:
    """The page with every generated block replaced by what the scripts print now."""
    return BLOCK.sub(lambda match: match.group(1) + _generated(match) + match.group(5), text)


def main() -> None:
    for page in PAGES:
        text = page.read_text()
        updated = regenerate(text)
        if updated != text:
            page.write_text(updated)
            print(f"updated {page.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
