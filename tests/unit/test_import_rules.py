"""DESIGN.md's import rules, checked in a fresh interpreter so nothing already imported by the
test session hides a violation: the node and discovery never load textual; the console never
loads the node."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

WALK = """
import importlib, json, pkgutil, sys
root = importlib.import_module({package!r})
found = pkgutil.walk_packages(root.__path__, root.__name__ + ".")
names = [root.__name__] + [m.name for m in found]
for name in names:
    importlib.import_module(name)
print(json.dumps({{"imported": names, "loaded": sorted(sys.modules)}}))
"""


def modules_loaded_by(package: str) -> tuple[list[str], set[str]]:
    done = subprocess.run([sys.executable, "-c", WALK.format(package=package)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    return result["imported"], set(result["loaded"])


def forbidden(loaded: set[str], prefix: str) -> list[str]:
    return sorted(m for m in loaded if m == prefix or m.startswith(prefix + "."))


@pytest.mark.parametrize("package", ["formation.node", "formation.discovery"])
def test_node_and_discovery_never_load_textual(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} does not exist yet")
    imported, loaded = modules_loaded_by(package)
    assert f"{package}.service" in imported or package != "formation.node"
    assert forbidden(loaded, "textual") == []
    assert forbidden(loaded, "formation.tui") == []


def test_console_never_loads_the_node() -> None:
    imported, loaded = modules_loaded_by("formation.tui")
    assert "formation.tui.app" in imported
    assert "textual" in loaded, "the walk really imported the console"
    assert forbidden(loaded, "formation.node") == []


NODE_START = """
import json, sys
from formation.commands import node
from formation.config.settings import NodeSettings
from formation.node.parts import build_parts
from formation.node.service import NodeService
build_parts(NodeSettings())
print(json.dumps(sorted(sys.modules)))
"""

# Not needed before the node is READY (imported on first use): under emulation in the appliance
# every module is a noticeable part of the boot.
# formation.api.openapi: /openapi.json is built on its first request, not while the node starts.
NOT_AT_NODE_START = ("textual", "segno", "zeroconf", "ruamel", "multiprocessing", "rich",
                     "formation.api.openapi")


def test_node_start_leaves_unneeded_libraries_unimported() -> None:
    done = subprocess.run([sys.executable, "-c", NODE_START], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert "formation.node.service" in loaded
    assert [m for p in NOT_AT_NODE_START for m in forbidden(loaded, p)] == []
