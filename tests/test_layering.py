"""The layering holds: import-linter's contracts, imports at module top, and a start-up that loads no heavy library.

docs/architecture.md draws the layers; pyproject.toml's [tool.importlinter] states them as contracts.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "catalog", "governance", "adapters", "wan_tasks", "flows", "cli", "dashboard")
# The deferred imports the architecture allows: one function per heavy library, and the CLI's one door to Prefect.
DEFERRED = {("core/heavy.py", "*"), ("cli/context.py", "prefect_flows"), ("cli/context.py", "serve_dashboard")}
HEAVY = ("torch", "diffusers", "transformers", "peft", "mlflow", "prefect", "great_expectations", "pandas",
         "onnxruntime", "cv2", "nudenet", "rapidocr_onnxruntime")


def _python_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "migrations" not in p.parts)


def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "Contracts: " in out.stdout and " broken" in out.stdout and "0 broken" in out.stdout


def test_imports_sit_at_module_top_except_the_deferred_heavy_ones():
    found = []
    for path in _python_files():
        rel = path.relative_to(ROOT).as_posix()
        for fn in ast.walk(ast.parse(path.read_text(), rel)):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if (rel, "*") in DEFERRED or (rel, fn.name) in DEFERRED:
                continue
            found += [f"{rel}:{node.lineno} in {fn.name}()" for node in ast.walk(fn)
                      if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert found == [], "imports inside functions (use core.heavy for a heavy library):\n" + "\n".join(found)


def _modules_loaded(argv: list[str], home: Path) -> set[str]:
    """Run the CLI in a fresh process and list the heavy libraries it imported."""
    code = ("import sys, json\nsys.argv = {argv!r}\nfrom cli.main import app\ntry:\n    app()\nexcept SystemExit:\n"
            "    pass\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))").format(argv=argv)
    env = dict(os.environ, WANFLOW_HOME=str(home))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_loads_no_heavy_library(tmp_path):
    loaded = _modules_loaded(["wanflow", "--help"], tmp_path)
    assert loaded & set(HEAVY) == set(), loaded & set(HEAVY)
    assert "cli" in loaded and "typer" in loaded  # the probe itself ran


def test_validate_loads_no_heavy_library_until_a_registry_exists(tmp_path):
    """The brief's rules are plain Python (governance.brief_rules); MLflow loads only to look a model alias up
    in an existing registry store, and nothing that generates, orchestrates or serves ever loads."""
    brief = str(ROOT / "examples" / "brief.yaml")
    assert _modules_loaded(["wanflow", "validate", brief], tmp_path) & set(HEAVY) == set()
    subprocess.run([sys.executable, "-m", "cli.main", "models", "list"], cwd=ROOT, capture_output=True, check=True,
                   env=dict(os.environ, WANFLOW_HOME=str(tmp_path)), timeout=300)  # creates the registry store
    loaded = _modules_loaded(["wanflow", "validate", brief], tmp_path)
    assert "mlflow" in loaded  # the alias was looked up
    assert loaded & {"torch", "diffusers", "transformers", "peft", "prefect", "great_expectations"} == set()
