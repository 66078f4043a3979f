"""Every Python block of the README runs as written against a running stack."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from serving_layer.refresh import refresh
from shared.config import REPO_ROOT, Settings

pytestmark = pytest.mark.e2e

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.S)


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_block_runs(stack: Settings, code: str) -> None:
    refresh(stack)  # the serving views exist (empty tables are fine)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300, check=False,
                          env={**os.environ, **stack.as_env()})
    assert done.returncode == 0, done.stdout + done.stderr
