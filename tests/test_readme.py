"""Every fenced ```python block of README.md runs as written.

Each block is executed in a fresh namespace with the working directory in pytest's tmp_path, so
files it writes (e.g. ``output="fem-out"``) land there. Blocks that run the DOLFINx solver take
30-60 s and are marked slow. New blocks are picked up automatically.
"""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
#: a fence opening with ```python (column 0) up to the next closing fence
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def readme_blocks():
    """Code of every python block, padded with blank lines so that a traceback's line numbers
    are README.md's."""
    text = README.read_text()
    return ["\n" * text.count("\n", 0, m.start(1)) + m.group(1) for m in FENCE.finditer(text)]


def _param(index: int, code: str):
    first = next((line.strip() for line in code.splitlines() if line.strip()), "")
    marks = [pytest.mark.slow] if 'method="fem"' in code else []
    return pytest.param(code, id=f"{index}-{first[:40]}", marks=marks)


def test_readme_has_python_blocks():
    assert readme_blocks(), "README.md has no ```python block (the extraction regex is stale?)"


@pytest.mark.parametrize("code", [_param(i, c) for i, c in enumerate(readme_blocks())])
def test_readme_block_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    exec(compile(code, str(README), "exec"), namespace)
