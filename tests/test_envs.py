"""The conda environments of the rules parse and name the same packages as pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _env_packages(path: Path) -> set[str]:
    env = yaml.safe_load(path.read_text())
    assert set(env) >= {"channels", "dependencies"}, path
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {_name(p) for p in dep["pip"] if not p.startswith("-")}
        else:
            names.add(_name(dep))
    return names - {"python", "pip"}


def test_every_rule_names_an_existing_env():
    envs = {p.name for p in (REPO / "envs").glob("*.yaml")}
    for smk in (REPO / "rules").glob("*.smk"):
        for name in re.findall(r'"\.\./envs/([^"]+)"', smk.read_text()):
            assert name in envs, f"{smk.name} names envs/{name}, which does not exist"


def test_envs_name_the_same_packages_as_pyproject():
    """Each env's packages are project dependencies; together they cover all but Snakemake itself."""
    deps = {_name(d) for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    union = set()
    for path in sorted((REPO / "envs").glob("*.yaml")):
        pkgs = _env_packages(path)
        assert pkgs <= deps, f"{path.name} names packages not in pyproject.toml: {sorted(pkgs - deps)}"
        union |= pkgs
    assert union == deps - {"snakemake"}, sorted((deps - {"snakemake"}) ^ union)
