"""`formation.__version__` where pip installed the package beside its dist-info (the appliance's
/usr/lib/formation/site): read from the directory's name, without importlib.metadata, whose
import and scan of sys.path the node would otherwise pay on every boot."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import formation

SHOW = """
import json, sys
sys.path.insert(0, sys.argv[1])
import formation
print(json.dumps({"version": formation.__version__, "file": formation.__file__,
                  "metadata": "importlib.metadata" in sys.modules}))
"""


def installed_copy(site: Path, dist_infos: list[str]) -> Path:
    package = site / "formation"
    package.mkdir(parents=True)
    shutil.copy(Path(formation.__file__), package / "__init__.py")
    for name in dist_infos:
        (site / name).mkdir()
    return site


def show(site: Path) -> dict:
    done = subprocess.run([sys.executable, "-S", "-c", SHOW, str(site)], capture_output=True,
                          text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_version_comes_from_the_dist_info_beside_the_package(tmp_path: Path) -> None:
    site = installed_copy(tmp_path / "site",
                          ["formation-1.2.3.dist-info", "pydantic-2.0.dist-info"])
    found = show(site)
    assert found["file"].startswith(str(site))
    assert found["version"] == "1.2.3"
    assert found["metadata"] is False


def test_without_a_single_dist_info_importlib_metadata_decides(tmp_path: Path) -> None:
    site = installed_copy(tmp_path / "site", ["formation-1.0.dist-info", "formation-2.0.dist-info"])
    found = show(site)
    assert found["metadata"] is True
    assert found["version"] not in ("1.0", "2.0")
