"""The app's import roots, from `python_path`, its pyproject or its layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from staging.workspace.roots import ImportRoots, app_names, import_roots


def make(tmp_path: Path, pyproject: str = "", files: tuple[str, ...] = ()) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    if pyproject:
        (tmp_path / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    for rel in files:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("pyproject", "roots", "source"),
    [
        pytest.param(
            '[tool.setuptools.packages.find]\nwhere = ["src"]',
            ("src",),
            "setuptools packages.find.where",
            id="setuptools-find",
        ),
        pytest.param(
            '[tool.setuptools]\npackage-dir = {"" = "lib"}',
            ("lib",),
            "setuptools package-dir",
            id="setuptools-package-dir",
        ),
        pytest.param(
            '[tool.setuptools.package-dir]\nshop = "code/shop"',
            ("code",),
            "setuptools package-dir",
            id="setuptools-named-package-dir",
        ),
        pytest.param(
            '[tool.hatch.build.targets.wheel]\npackages = ["src/shop"]',
            ("src",),
            "hatch build packages",
            id="hatch",
        ),
        pytest.param(
            '[tool.pdm.build]\npackage-dir = "src"', ("src",), "pdm build package-dir", id="pdm"
        ),
        pytest.param(
            '[tool.poetry]\npackages = [{include = "shop", from = "lib"}]',
            ("lib",),
            "poetry packages",
            id="poetry-from",
        ),
        pytest.param(
            '[tool.poetry]\npackages = [{include = "shop"}]',
            (".",),
            "poetry packages",
            id="poetry-flat",
        ),
        pytest.param(
            '[build-system]\nbuild-backend = "uv_build"',
            ("src",),
            "uv build-backend",
            id="uv-default",
        ),
        pytest.param(
            '[tool.uv.build-backend]\nmodule-root = ""', (".",), "uv build-backend", id="uv-flat"
        ),
    ],
)
def test_roots_from_the_build_config(
    tmp_path: Path, pyproject: str, roots: tuple[str, ...], source: str
) -> None:
    found = import_roots(make(tmp_path, pyproject))
    assert (found.roots, found.source) == (roots, source)


def test_flit_module_in_src_or_at_the_root(tmp_path: Path) -> None:
    config = '[tool.flit.module]\nname = "shop"'
    assert import_roots(make(tmp_path / "a", config, ("src/shop/__init__.py",))).roots == ("src",)
    assert import_roots(make(tmp_path / "b", config, ("shop.py",))).roots == (".",)


def test_configured_python_path_wins(tmp_path: Path) -> None:
    app = make(tmp_path, '[tool.setuptools.packages.find]\nwhere = ["src"]')
    assert import_roots(app, ["lib", "."]) == ImportRoots(("lib", "."), "python_path")


def test_a_plain_src_dir_then_the_app_dir(tmp_path: Path) -> None:
    src = make(tmp_path / "a", "[project]\nname = 'x'", ("src/shop/__init__.py",))
    assert import_roots(src) == ImportRoots(("src",), "src layout")
    # An empty src/ (or one holding only data) is not a layout.
    flat = make(tmp_path / "b", "", ("src/data.txt", "shop/__init__.py"))
    assert import_roots(flat) == ImportRoots((".",), "app dir")


def test_roots_leaving_the_app_are_ignored(tmp_path: Path) -> None:
    app = make(tmp_path, '[tool.setuptools.packages.find]\nwhere = ["../elsewhere"]')
    assert import_roots(app).source == "app dir"


def test_app_names_are_regular_packages_and_modules(tmp_path: Path) -> None:
    app = make(
        tmp_path,
        "",
        (
            "shop/__init__.py",
            "shop/orders.py",
            "run_pipeline.py",
            "alembic/env.py",  # no __init__: migrations data, named like the library
            ".venv/lib/x.py",
            "docs/index.md",
        ),
    )
    assert app_names(app, import_roots(app)) == {"shop", "run_pipeline"}


def test_app_names_include_declared_packages(tmp_path: Path) -> None:
    app = make(tmp_path, '[tool.hatch.build.targets.wheel]\npackages = ["src/shop"]')
    # Declared but not on disk (yet): still the app's own name.
    assert app_names(app, import_roots(app)) == {"shop"}
