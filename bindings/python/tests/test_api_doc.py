"""docs/api.md lists every public name of the Python package: a name in its
Python column that `apikeys/__init__.pyi` lacks, or a name the stubs declare
without a row there, fails this test (the three APIs may not drift apart)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
STUBS = ROOT / "bindings" / "python" / "python" / "apikeys" / "__init__.pyi"
API_DOC = ROOT / "docs" / "api.md"


def stub_names(text: str) -> set[str]:
    """Top-level classes and functions, and each class's public members."""
    names: set[str] = set()
    cls: str | None = None
    for line in text.splitlines():
        if m := re.match(r"^class (\w+)", line):
            cls = m.group(1)
            names.add(cls)
        elif m := re.match(r"^def (\w+)", line):
            cls = None
            names.add(m.group(1))
        elif re.match(r"^[A-Za-z_]", line):
            cls = None
        elif cls is not None:
            m = (
                re.match(r"^    def (\w+)", line)
                or re.match(r"^    ([a-z]\w*)\s*:", line)
                or re.match(r"^    ([A-Z][A-Z_0-9]*)\s*=", line)
            )
            if m and not m.group(1).startswith("_"):
                names.add(f"{cls}.{m.group(1)}")
    return names


def doc_names(text: str, column: int) -> set[str]:
    """The names in one column (0 Rust, 1 Python, 2 Node) of every table."""
    names: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] == "Rust":
            continue
        m = re.fullmatch(r"`([\w.]+)`", cells[column])
        if m:
            names.add(m.group(1))
    return names


def test_every_stub_name_has_a_row_and_every_row_a_stub_name() -> None:
    declared = stub_names(STUBS.read_text(encoding="utf-8"))
    listed = doc_names(API_DOC.read_text(encoding="utf-8"), 1)
    assert declared, "no names read from the stubs"
    assert sorted(declared - listed) == [], "declared in __init__.pyi but not in docs/api.md"
    assert sorted(listed - declared) == [], "in docs/api.md's Python column but not in __init__.pyi"


def test_the_checks_read_what_they_claim_to() -> None:
    # A row naming a missing member is caught, and so is a member without a row.
    stubs = "class Keyring:\n    def authenticate(self) -> None: ...\n    def extra(self) -> None: ...\n"
    doc = "| Rust | Python | Node | note |\n|---|---|---|---|\n| `x` | `Keyring.authenticate` | — | |\n| `y` | `Keyring.gone` | — | |\n"
    assert stub_names(stubs) == {"Keyring", "Keyring.authenticate", "Keyring.extra"}
    assert doc_names(doc, 1) == {"Keyring.authenticate", "Keyring.gone"}
