"""What a fresh install relies on: every import declared in pyproject.toml, a missing extra named in one line."""

import ast
import re
import sys
import tomllib
from importlib import metadata

import pytest
from hydra.errors import InstantiationException

from lnn.config import run_or_explain
from tests.conftest import ROOT


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return {re.sub(r"[-_.]+", "-", re.split(r"[<>=!~;\[ ]", r.strip(), maxsplit=1)[0]).lower() for r in reqs}


def _imported() -> dict[str, str]:
    """Top-level modules imported anywhere in the library and entry points (lazy imports included) -> where."""
    found = {}
    for path in [*(ROOT / "src").rglob("*.py"), ROOT / "train.py", ROOT / "export.py"]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_third_party_import_is_declared():
    declared, providers = _declared(), metadata.packages_distributions()
    missing = []
    for module, where in sorted(_imported().items()):
        if module in sys.stdlib_module_names or module in ("lnn", "__future__"):
            continue
        dists = {re.sub(r"[-_.]+", "-", d).lower() for d in providers.get(module, [])}
        if not dists:
            missing.append(f"{module} ({where}) is not installed, so its declaration cannot be checked")
        elif not dists & declared:
            missing.append(f"{module} ({where}, from {', '.join(sorted(dists))}) is not declared in pyproject.toml")
    assert not missing, "\n".join(missing)


def test_a_missing_extra_is_named_in_one_line(capsys):
    def build_lfm2():  # what instantiating model=lfm2_liquid does without the lfm2 extra
        try:
            raise ModuleNotFoundError("No module named 'transformers'", name="transformers")
        except ModuleNotFoundError as e:
            raise InstantiationException("Error in call to target 'lnn.models.lfm2.LFM2Policy'") from e

    with pytest.raises(SystemExit) as exit_:
        run_or_explain(build_lfm2)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == ('error: transformers is not installed; the LFM2-VL models (model=lfm2_liquid / '
                                       'lfm2_hybrid) need it: pip install -e ".[lfm2]"\n')


def test_other_import_errors_keep_their_traceback():
    def broken():
        import lnn_no_such_module  # noqa: F401

    with pytest.raises(ModuleNotFoundError):
        run_or_explain(broken)
