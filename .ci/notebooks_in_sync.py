"""Check that each course notebook's .ipynb is its jupytext source rendered, without outputs.

The ``.py`` files in notebooks/ (jupytext's percent format) are the sources people edit and
review; each ``.ipynb`` beside it must hold the same cells, in order, and no outputs (the
rendering is ``jupytext --to ipynb notebooks/NAME.py``). Cell ids, which jupytext draws at
random, are not compared. Exit status 1 with one line per notebook out of step.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def cells(path: Path) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in jupytext.read(path).cells]


def problems(directory: Path) -> list[str]:
    found = []
    sources = sorted(directory.glob("*.py"))
    for source in sources:
        rendered = source.with_suffix(".ipynb")
        fix = f"run: jupytext --to ipynb {source.relative_to(directory.parent)}"
        if not rendered.is_file():
            found.append(f"{rendered.name}: missing; {fix}")
        elif cells(rendered) != cells(source):
            found.append(f"{rendered.name}: its cells differ from {source.name}; {fix}")
        elif any(cell.get("outputs") for cell in jupytext.read(rendered).cells):
            found.append(f"{rendered.name}: has outputs (keep the repository small); {fix}")
    for rendered in sorted(directory.glob("*.ipynb")):
        if not rendered.with_suffix(".py").is_file():
            found.append(f"{rendered.name}: has no .py source; write it with: jupytext --to py:percent {rendered.name}")
    if not sources:
        found.append(f"no notebook sources in {directory}")
    return found


def main() -> int:
    found = problems(NOTEBOOKS)
    for line in found:
        print(f"notebooks out of sync: {line}", file=sys.stderr)
    if not found:
        print(f"notebooks in sync: {len(list(NOTEBOOKS.glob('*.py')))} sources and their .ipynb")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
