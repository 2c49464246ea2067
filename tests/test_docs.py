"""The documentation stays true to the code: generated option tables, results tables, CI's test command, links,
and no drafting token left in the text.

The option tables in docs/configuration.md are generated from the dataclasses: regenerate them with
`python tests/test_docs.py` and paste the output between the markers. The results tables are the
benchmark scripts' output: `python benchmarks/doc_tables.py` rewrites them from benchmarks/results/.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

import sada_hf
from sada_hf import SADAConfig
from sada_hf.arguments import JobArguments, ModelArguments
from sada_hf.data import DataArguments
from sada_hf.ops import OP_NAMES

import api_reference
import doc_tables

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"
CHANGELOG = ROOT / "CHANGELOG.md"
PAGES = [README, CHANGELOG, *sorted((ROOT / "docs").glob("*.md")), ROOT / "tests" / "fixtures" / "README.md"]
SECTIONS = {
    "SADA options (`SADAConfig`)": SADAConfig,
    "Model options": ModelArguments,
    "Data options": DataArguments,
    "Job options": JobArguments,
}


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


def test_option_tables_match_the_dataclasses():
    text = CONFIGURATION.read_text()
    match = re.search(r"<!-- options:start -->\n(.*?)\n<!-- options:end -->", text, re.S)
    assert match, "docs/configuration.md lacks the <!-- options:start --> ... <!-- options:end --> block"
    assert match.group(1).strip() == options_tables().strip(), (
        "docs/configuration.md's options are stale: run python tests/test_docs.py and paste its output"
    )


def test_results_tables_are_what_the_benchmarks_print():
    found = {page: doc_tables.blocks(page.read_text()) for page in doc_tables.PAGES}
    readme = {marker for marker, _, _ in found[README]}
    assert {"<!-- accuracy.py headline -->", "<!-- label_errors.py headline -->"} <= readme, (
        "README.md lost its generated headline tables (<!-- accuracy.py headline --> ... <!-- end -->)"
    )
    stale = [
        f"{page.name}: {marker}" for page, made in found.items() for marker, now, printed in made if now != printed
    ]
    assert not stale, (
        "results tables differ from the results files; run python benchmarks/doc_tables.py:\n" + "\n".join(stale)
    )


def test_a_stale_results_table_is_rewritten_and_an_ambiguous_marker_refused():
    marker = "<!-- accuracy.py table model=vit_finetune examples_per_class=250 epochs=10 -->"
    page = f"Before.\n\n{marker}\n\n| strategy | typed by hand |\n\n<!-- end -->\n\nAfter.\n"
    (block,) = doc_tables.blocks(page)
    assert block[0] == marker and block[1] == "| strategy | typed by hand |" and block[2].startswith("| strategy |")
    assert doc_tables.regenerate(page) == f"Before.\n\n{marker}\n\n{block[2]}\n\n<!-- end -->\n\nAfter.\n"
    with pytest.raises(ValueError, match="comparisons in the results have"):
        doc_tables.blocks("<!-- accuracy.py table model=resnet -->\n\n|\n\n<!-- end -->")


def test_the_api_reference_is_what_the_docstrings_say():
    assert api_reference.PAGE.read_text() == api_reference.render(), (
        "docs/api.md differs from the docstrings: run python tools/api_reference.py"
    )


def test_the_api_reference_refuses_an_undocumented_member():
    class Exported:
        """Documented."""

        def documented(self) -> int:
            """One line."""
            return 1

        def undocumented(self) -> int:
            return 2

    with pytest.raises(ValueError, match="Exported.undocumented has no docstring"):
        api_reference._entry("Exported", Exported)


def test_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pytest -q" in README.read_text() and "python -m pytest -q" in ci


def test_the_changelog_and_the_citation_give_the_packages_version():
    """The newest released section is the package's version; only an `Unreleased` section may come before."""
    sections = re.findall(r"^## (\S+)", CHANGELOG.read_text(), re.M)
    released = sections[1:] if sections[:1] == ["Unreleased"] else sections
    assert released and released[0] == sada_hf.__version__, (
        f"CHANGELOG.md's newest released section is {released[:1]}, the package says {sada_hf.__version__}: "
        "add the section for this version (or bump __version__ in sada_hf/__init__.py)"
    )
    cited = re.search(r'^version: "([^"]+)"', (ROOT / "CITATION.cff").read_text(), re.M)
    assert cited and cited.group(1) == sada_hf.__version__, "CITATION.cff's version is not the package's"


# --- links -------------------------------------------------------------------------------------------

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _prose(markdown: str) -> str:
    """The text outside fenced code blocks, where `#` starts a comment, not a heading."""
    return _FENCE.sub("", markdown)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation other than `-` and `_` removed, spaces to `-`."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link in a heading: its text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading's anchor; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    result = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", _prose(markdown), re.M):
        base = slug(heading)
        result.add(base if base not in seen else f"{base}-{seen[base]}")
        seen[base] = seen.get(base, 0) + 1
    return result


def relative_links(markdown: str) -> list[str]:
    """The targets of the links outside code, except absolute ones (http:, https:, mailto:)."""
    targets = _LINK.findall(_CODE_SPAN.sub("", _prose(markdown)))
    return [target for target in targets if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def test_slugs_follow_githubs_rules():
    assert slug("Swap `Trainer` for `SADATrainer`") == "swap-trainer-for-sadatrainer"
    assert slug("Decision rules for the 0.4 runs (written before the runs they judge)") == (
        "decision-rules-for-the-04-runs-written-before-the-runs-they-judge"
    )
    assert slug("How it works, and the decisions the paper leaves open") == (
        "how-it-works-and-the-decisions-the-paper-leaves-open"
    )
    assert slug("train_step or probe?") == "train_step-or-probe"
    assert anchors("# A\n```bash\n# not a heading\n```\n## A\n") == {"a", "a-1"}


def broken_links(page: Path) -> list[str]:
    """Each relative link of `page` whose file does not exist, or whose `#anchor` names no heading there."""
    broken = []
    for target in relative_links(page.read_text()):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no file {resolved}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
            broken.append(f"{target}: no heading with the anchor #{anchor} in {resolved}")
    return broken


def test_link_checker_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## Its part\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n[ok](#page) [ok](other.md#its-part) [ok](other.md) [web](https://example.com/x.md)\n"
        "`[code](nowhere.md)`\n```bash\n[block](nowhere.md)\n```\n"
        "[gone](missing.md) [gone](other.md#no-such-part) [gone](#its-part)\n"
    )
    assert [entry.split(":")[0] for entry in broken_links(page)] == [
        "missing.md",
        "other.md#no-such-part",
        "#its-part",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = broken_links(page)
    assert not broken, f"broken links in {page.relative_to(ROOT)}:\n" + "\n".join(broken)


# --- drafting tokens ------------------------------------------------------------------------------

_TOKEN = re.compile(r"(?<![$\w])[A-Z]+(?:_[A-Z0-9]+)+\b")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_CODE_SPAN_ACROSS_LINES = re.compile(r"`[^`]*`")


def drafting_tokens(markdown: str) -> list[str]:
    """ALL_CAPS_NAMES in the prose outside code and comments: a stand-in for text never written (an
    environment variable is written `$NAME` or in code)."""
    return _TOKEN.findall(_COMMENT.sub("", _CODE_SPAN_ACROSS_LINES.sub("", _prose(markdown))))


def test_the_token_finder_skips_code_comments_and_variables():
    page = "A NOISE_VERDICT, `CODE_SPAN`, `a\nSPAN_ACROSS`, $ENV_VAR, <!-- A_B -->, snake_case.\n```\nIN_CODE\n```\n"
    assert drafting_tokens(page) == ["NOISE_VERDICT"]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_no_drafting_token_is_left(page):
    assert not drafting_tokens(page.read_text()), f"{page.relative_to(ROOT)}: write the text these stand for"


# --- only the project speaks ------------------------------------------------------------------------

# How the project was made is no part of it: who lent what to which session, a helper's or an agent's
# work, the tools used to fetch files, the day the machine was slow. A results row records its machine
# and date; the pages say so once, in a table's footer.
_MAKING = re.compile(
    r"\b(?:lent|sessions?|helpers?|agents?|code-search|search tool)\b"
    r"|\b(?:twice|\w+ times) as (?:slow|fast)\b|\ba day (?:this|the)\s+machine\b",
    re.I,
)


def words_about_the_making(markdown: str) -> list[str]:
    return [match.group(0) for match in _MAKING.finditer(markdown)]


def test_the_making_finder_finds_its_words():
    page = "No GPU was lent to the session; a helper's draft, fetched with a code-search tool, on a day this\nmachine ran twice as slow. The agent. A helpful assistant. Lentils."
    assert words_about_the_making(page) == [
        "lent", "session", "helper", "code-search", "a day this\nmachine", "twice as slow", "agent"
    ]  # fmt: skip


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_the_pages_speak_only_of_the_project(page):
    found = words_about_the_making(page.read_text())
    assert not found, f"{page.relative_to(ROOT)} speaks of how the project was made: {found}"


# --- figures that agree ----------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?\d[\d,]*(?:\.\d+)?")
_MEMORY = re.compile(r"(\d[\d,]*(?:\.\d+)?) ?(?:GiB|MiB|KiB|GB|MB|KB)\b")
_RESULT = re.compile(
    r"AUROC[^.\n]{0,40}?\b(0\.\d{3})\b|(?<![\w.])([+-]\d+\.\d\d)\b|(?<![\w.+-])(\d+\.\d\d)(?= points)"
)
_TEST_COUNT = re.compile(r"\b(\d+) (?:tests )?passed\b")


def running_text(markdown: str) -> str:
    """The sentences of a page: no generated block, code, comment or table row (tables are printed)."""
    text = _COMMENT.sub("", _prose(doc_tables.BLOCK.sub("", markdown)))
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("|"))


def printed_figures(pages: dict[str, str]) -> tuple[set[str], set[str]]:
    """The numbers the benchmarks print into the pages' generated blocks, and those of every table."""
    generated = {n for text in pages.values() for _, _, made in doc_tables.blocks(text) for n in _NUMBER.findall(made)}
    rows = [line for text in pages.values() for line in text.splitlines() if line.lstrip().startswith("|")]
    return generated, generated | {n for line in rows for n in _NUMBER.findall(line)}


def figures_that_disagree(pages: dict[str, str]) -> list[str]:
    """Figures retyped in the running text that no benchmark prints: a memory size must be a number of some
    table, an AUROC or a difference in points (signed, or its size) one of a generated block, and a test
    count ("N passed") must stand on one page only (the others link to it)."""
    generated, tabled = printed_figures(pages)
    found, counts = [], {}
    for name, text in pages.items():
        prose = running_text(text)
        found += [
            f"{name}: {m.group(0)} (no table prints {m.group(1)})"
            for m in _MEMORY.finditer(prose)
            if m.group(1) not in tabled
        ]
        for m in _RESULT.finditer(prose):
            value = m.group(1) or m.group(2) or m.group(3)
            if value not in generated and not (m.group(3) and {f"+{value}", f"-{value}"} & generated):
                found.append(f"{name}: {m.group(0).strip()} (no generated table prints {value})")
        for count in set(_TEST_COUNT.findall(prose)):
            counts.setdefault(count, []).append(name)
    found += [f"{count} passed: on {', '.join(names)}" for count, names in counts.items() if len(names) > 1]
    return found


def test_the_figure_checker_finds_retyped_figures():
    table = (
        "<!-- label_errors.py headline -->\n\n"
        + doc_tables.generate("label_errors.py headline", {})
        + "\n\n<!-- end -->"
    )
    one = doc_tables.generate("label_errors.py headline", {}).splitlines()[3].split("|")[2].strip().split()[0]
    pages = {
        "a.md": f"{table}\n\nAUROC {one} here. 4.9 GiB of store; 373 tests passed.\n\n| x | 4.9 |\n",
        "b.md": "AUROC 0.123 retyped; 4.8 GiB typed again, 9.87 points; 373 passed.\n```\n+9.99 in code\n```\n",
    }
    assert figures_that_disagree(pages) == [
        "b.md: 4.8 GiB (no table prints 4.8)",
        "b.md: AUROC 0.123 (no generated table prints 0.123)",
        "b.md: 9.87 (no generated table prints 9.87)",
        "373 passed: on a.md, b.md",
    ]


def test_figures_in_the_text_are_the_ones_the_benchmarks_print():
    pages = {str(page.relative_to(ROOT)): page.read_text() for page in PAGES}
    found = figures_that_disagree(pages)
    assert not found, "figures typed by hand that disagree with what is printed (link to the table):\n" + "\n".join(
        found
    )


# --- results files --------------------------------------------------------------------------------

RESULTS_FILES = sorted((ROOT / "benchmarks" / "results").glob("*.jsonl"))
_HOME_PATH = re.compile(r"(?<![\w.~])(?:/home/[^/\s'\"]+|/Users/[^/\s'\"]+|/root)(?=/|\s|$|['\"])")


def home_paths(command: str) -> list[str]:
    """The absolute home-folder paths in a recorded command (a user's command writes them from `~`)."""
    return _HOME_PATH.findall(command)


def test_the_home_path_finder_skips_paths_from_the_home_folder():
    assert home_paths("sada-hf train --model_name_or_path ~/.cache/sada_hf/pretrained/vit --output_dir out") == []
    assert home_paths("sada-hf train --model_name_or_path /root/.cache/vit") == ["/root"]
    assert home_paths("x --dir '/home/ada/runs' --y /Users/ada/z") == ["/home/ada", "/Users/ada"]


@pytest.mark.parametrize("results", RESULTS_FILES, ids=lambda path: path.name)
def test_recorded_commands_run_on_any_machine(results):
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    bad = [
        f"row {n}: {home_paths(row['command'])}" for n, row in enumerate(rows, 1) if home_paths(row.get("command", ""))
    ]
    assert not bad, f"{results.name} records commands with an absolute home path (write it from ~):\n" + "\n".join(bad)


if __name__ == "__main__":
    print(options_tables())
