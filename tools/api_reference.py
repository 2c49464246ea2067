"""docs/api.md, the reference of the public API, generated from the docstrings of what `sada_hf` exports.

    python tools/api_reference.py        # rewrites docs/api.md

tests/test_docs.py fails when docs/api.md differs from what this prints, or when a public name or member
has no docstring of its own.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import sada_hf  # noqa: E402

PAGE = ROOT / "docs" / "api.md"
SECTIONS = ("Args", "Attributes", "Returns", "Raises")
# The order a reader meets the names in (a name exported later comes after these, alphabetically).
READING_ORDER = ("SADATrainer", "SADATransform", "SADAConfig", "label_issues", "data_map", "SADAState")
INTRO = """# API reference

What `sada_hf` exports, from the docstrings (`python tools/api_reference.py` writes this page; the tests
fail when it is stale). The options of `SADAConfig` are in [Configuration](configuration.md); how to use
the pieces together is in [Using sada_hf](usage.md). A method that overrides `Trainer`'s with the same
contract is not repeated here.
"""


def _own_doc(name: str, member: object) -> str:
    """The member's own docstring, dedented; an undocumented public member is an error."""
    target = member.fget if isinstance(member, property) else member
    doc = target.__doc__
    if not doc:
        raise ValueError(f"{name} has no docstring: write one line saying what it is for")
    return inspect.cleandoc(doc)


def _markdown(doc: str) -> str:
    """A docstring as Markdown: its `Args:`-style sections become lists of `name`: text."""
    out, section = [], None
    for line in doc.splitlines():
        heading = re.fullmatch(r"(\w+):", line)
        if heading and heading.group(1) in SECTIONS:
            section = heading.group(1)
            out += [f"**{section}**", ""] if out and not out[-1] else ["", f"**{section}**", ""]
        elif section and line.startswith("    ") and not line.startswith("        "):
            head, _, text = line.strip().partition(": ")
            name, _, kind = head.partition(" ")
            out.append(f"- `{name}`{' ' + kind if kind else ''}: {text}")
        elif section and line.startswith("        "):
            out[-1] += " " + line.strip()
        else:
            section = None if not line.startswith(" ") else section
            out.append(line)
    return "\n".join(out).strip()


def _signature(name: str, obj: object) -> str:
    """`name(parameters) -> returns` as it is written in the code: annotations unquoted, no `self`, no
    constructor's `-> None`."""
    text = re.sub(r"(: |-> )'([^']*)'", r"\1\2", str(inspect.signature(obj)))
    text = re.sub(r"^\(self(, )?", "(", text)
    text = text.removesuffix(" -> None") if inspect.isclass(obj) else text
    return f"{name}{text}" if len(name) + len(text) <= 100 else f"{name}{_wrapped(text)}"


def _wrapped(signature: str) -> str:
    """One parameter a line, as a formatter would."""
    inside, _, returns = signature[1:].rpartition(")")
    parameters = re.split(r", (?![^\[\(\{]*[\]\)\}])", inside)
    return "(\n" + "".join(f"    {p},\n" for p in parameters) + ")" + returns


def _members(cls: type) -> list[tuple[str, object]]:
    """Public methods and properties the class defines, but overrides that keep a base class's contract
    (and its docstring)."""
    bases = [base for base in cls.__mro__[1:] if base is not object]
    members = []
    for name, member in vars(cls).items():
        if name.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
            continue
        if any(hasattr(base, name) for base in bases) and member.__doc__ is None:
            continue
        members.append((name, member))
    return members


def _entry(name: str, obj: object) -> list[str]:
    lines = [f"## `{name}`", ""]
    if dataclasses.is_dataclass(obj):
        lines += [f"`{name}(**options)`: every option is in [Configuration](configuration.md).", ""]
    else:
        lines += ["```python", _signature(name, obj), "```", ""]
    lines += [_markdown(_own_doc(name, obj)), ""]
    if inspect.isclass(obj):
        for member_name, member in _members(obj):
            qualified = f"{name}.{member_name}"
            lines += [f"### `{qualified}`", ""]
            if inspect.isfunction(member):
                lines += ["```python", _signature(member_name, member), "```", ""]
            lines += [_markdown(_own_doc(qualified, member)), ""]
    return lines


def render() -> str:
    """docs/api.md as it should read."""
    lines = [INTRO]
    first = [name for name in READING_ORDER if name in sada_hf.__all__]
    for name in first + sorted(set(sada_hf.__all__) - set(first)):
        lines += _entry(name, getattr(sada_hf, name))
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    PAGE.write_text(render())
    print(f"wrote {PAGE.relative_to(ROOT)}")
