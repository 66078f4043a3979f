"""Imports go one way: shared < infra < {producers, speed_layer, batch_layer, serving_layer}
< concord, and the four layers never import one another (what two layers share lives in
shared/). Read from the source of every shipped module: every `import` and `from ...
import`, also those inside functions and `if TYPE_CHECKING:` blocks."""

from __future__ import annotations

import ast
from pathlib import Path

from shared.config import REPO_ROOT

RANK = {"shared": 0, "infra": 1, "producers": 2, "speed_layer": 2, "batch_layer": 2,
        "serving_layer": 2, "concord": 3}
# Never imported by shipped code: development-only packages.
DEV_ONLY = {"harness", "tests", "bench"}


def imports_of(source: str, package: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in `source`, a module of `package`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            top = package if node.level else (node.module or "").split(".")[0]
            found.append((node.lineno, top))
    return found


def violations(root: Path) -> list[str]:
    """Every import of a shipped module under `root` that goes against the order."""
    out = []
    for package, rank in RANK.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, target in imports_of(path.read_text(), package):
                where = f"{path.relative_to(root)}:{line} imports {target}"
                if target in DEV_ONLY:
                    out.append(f"{where}: a development-only package")
                elif target == package or target not in RANK:
                    continue
                elif RANK[target] > rank:
                    out.append(f"{where}: upward ({package} is below {target})")
                elif RANK[target] == rank:
                    out.append(f"{where}: sideways (layers never import one another; "
                               "move what both need to shared/)")
    return out


def test_imports_follow_the_layering() -> None:
    assert violations(REPO_ROOT) == []


def test_every_shipped_package_is_ranked() -> None:
    shipped = {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")} - DEV_ONLY
    assert shipped == set(RANK)


def test_upward_sideways_and_dev_imports_are_caught(tmp_path: Path) -> None:
    for package in RANK:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "shared" / "a.py").write_text("import json\nfrom infra.kafka import consumer\n")
    (tmp_path / "batch_layer" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import speed_layer.job\n"
        "from . import c\nfrom shared import tables\n")
    (tmp_path / "infra" / "c.py").write_text("def f() -> None:\n    from harness import x\n")
    (tmp_path / "concord" / "d.py").write_text("import infra, shared, speed_layer\n")
    assert violations(tmp_path) == [
        "shared/a.py:2 imports infra: upward (shared is below infra)",
        "infra/c.py:2 imports harness: a development-only package",
        "batch_layer/b.py:3 imports speed_layer: sideways (layers never import one another; "
        "move what both need to shared/)",
    ]
