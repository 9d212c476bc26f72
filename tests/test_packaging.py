"""A wheel must carry every package and the resources: pyproject lists them, one locator finds them."""

import fnmatch
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import tomllib

from dvis_models import resources

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_is_listed_for_the_wheel():
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for top in ("app", "dvis_models") for init in (ROOT / top).rglob("__init__.py")}
    listed = set(SETUPTOOLS["packages"])
    assert found - listed == set(), "packages missing from pyproject's [tool.setuptools] packages"
    assert listed - found == {"dvis_resources", "dvis_resources.models"}


def test_resources_are_package_data_of_dvis_resources():
    assert SETUPTOOLS["package-dir"] == {"dvis_resources": "resources"}
    shipped = set()
    for package, patterns in SETUPTOOLS["package-data"].items():
        folder = ROOT / "resources" / Path(*package.split(".")[1:])
        shipped |= {path for path in folder.iterdir() if any(fnmatch.fnmatch(path.name, p) for p in patterns)}
    assert {resources.VIPSEG_CATEGORIES_FILE, resources.BUNDLED_CHECKPOINT} <= shipped
    assert resources.VIPSEG_CATEGORIES_FILE.is_file() and resources.BUNDLED_CHECKPOINT.is_file()


def test_app_and_models_read_one_category_table_through_the_locator():
    from dvis_models import categories, preset_config

    assert categories.VIPSEG_CATEGORIES_FILE == resources.VIPSEG_CATEGORIES_FILE
    assert preset_config("r50_vipseg_online").categories == categories.vipseg_categories().to_json()


def test_an_installed_dvis_resources_package_is_preferred(tmp_path):
    """Installed (a dvis_resources package on sys.path), the files come from the package, not the checkout."""
    package = tmp_path / "dvis_resources"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    code = "from dvis_models import resources; print(resources.BUNDLED_CHECKPOINT)"
    env_path = f"{tmp_path}:{ROOT}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
    assert result.stdout.strip() == str(package / "models" / "dvis_bundled_small.pth")


def test_setuptools_reads_the_metadata_without_a_deprecation_warning():
    """The build's first step (setuptools applying pyproject's [project]) warns about nothing, e.g. not about
    ``license`` as a table (deprecated; builds stop accepting it): it is an SPDX expression."""
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("setuptools < 77 (the build requires 77 or later) is installed")
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert dist.metadata.license_expression == "MIT"
