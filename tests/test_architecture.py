"""The import rules of the house (../shared/ARCHITECTURE.md), checked by parsing imports.

Every module of the package is parsed with `ast`; an import of `cyclejax.a.b` counts as
importing `cyclejax.a` too (Python runs the package's __init__ first), except a
module's own parent packages. A command is a top-level module with a `__main__` block or
a package's `__main__.py`; a `__main__` is not part of its package for these rules.

The lines never crossed:
  - nothing imports a command module;
  - nothing below the trainer imports it (only commands and the benchmarks do);
  - models/ imports only jax, flax, numpy (and the standard library) and itself;
  - data/ never imports models/;
  - the objective (gan/) and the CAM library (explain/) never import cyclejax.config or
    run/; the config schema never imports the CAM maths nor builds a network;
  - only run/ imports orbax and spells a run's file names; only interop/ and perf/
    import torch;
  - no import cycles.
Beside them, each room may import the rooms its row of ARCHITECTURE.md's table lists
(ROOMS below), plus the leaf helpers every room shares (errors, names, xla).
"""

import ast
import pathlib
import sys

from conftest import REPO

PACKAGE = REPO / "cyclejax"
# Leaf modules any room may import: the user-error type, the shared names, the compiler
# options helper.
LEAVES = {"cyclejax.errors", "cyclejax.names", "cyclejax.xla"}
# room -> rooms it may import (ARCHITECTURE.md's "may import" column).
ROOMS = {
  "cli": {"config"},
  "errors": set(),
  "names": set(),
  "xla": set(),
  "config": {"models"},
  "train": {"gan", "run", "data", "explain", "metrics", "config"},
  "gan": {"models", "explain", "data"},
  "models": set(),
  "data": set(),
  "explain": {"models", "data"},
  "metrics": {"models", "data"},
  "run": {"config", "data"},
  "analysis": {"gan", "run", "data", "explain", "metrics", "models", "config"},
  "explorer": {"analysis", "run", "data", "explain", "models"},
  "interop": {"models", "config", "run", "data"},
  # The SFT-GAN explainer of CNN classifiers: a capability with its own package.
  "sft": {"gan", "run", "data", "explain", "models"},
}
# A run's file names: spelled only in cyclejax/run/workdir.py.
RUN_FILE_NAMES = {
  "metrics.jsonl",
  "config.json",
  "data_check.json",
  "imported.json",
  "loss_curves.png",
  "train_vs_validation.png",
  "tensorboard",
  "checkpoints",
  "eval_curves.png",
  "damaged_checkpoints",
  "trainer.lock",
  "best.json",
}


def module_name(path: pathlib.Path) -> str:
  parts = list(path.relative_to(REPO).with_suffix("").parts)
  if parts[-1] == "__init__":
    parts.pop()
  return ".".join(parts)


def is_command(path: pathlib.Path) -> bool:
  if path.name == "__main__.py":
    return True
  return path.parent == PACKAGE and '__name__ == "__main__"' in path.read_text()


def room(name: str) -> str:
  """'cyclejax.gan.state' -> 'gan'; 'cyclejax' -> ''."""
  parts = name.split(".")
  return parts[1] if len(parts) > 1 else ""


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
COMMANDS = {name for name, p in MODULES.items() if is_command(p)}


def imports(name: str) -> set[str]:
  """Absolute names of everything module `name` imports (anywhere in its body)."""
  path = MODULES[name]
  tree = ast.parse(path.read_text())
  package = name if path.name == "__init__.py" else name.rpartition(".")[0]
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        anchor = package.split(".")
        anchor = anchor[: len(anchor) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
      out.add(base)
      for alias in node.names:  # `from cyclejax import train` imports cyclejax.train
        if f"{base}.{alias.name}" in MODULES:
          out.add(f"{base}.{alias.name}")
  # Importing a.b.c runs a and a.b first; a module's own parents are not edges.
  own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
  expanded = set()
  for imported in out:
    parts = imported.split(".")
    expanded.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
  return expanded - own - {name}


def internal(names: set[str]) -> set[str]:
  return {n for n in names if n in MODULES and n != "cyclejax"}


def third_party(names: set[str]) -> set[str]:
  return {
    n.split(".")[0]
    for n in names
    if not n.startswith("cyclejax") and n.split(".")[0] not in sys.stdlib_module_names
  }


LIBRARY = sorted(n for n in MODULES if n not in COMMANDS and n != "cyclejax")


def test_the_commands_are_the_documented_doors():
  expected = {
    "main",
    "translate",
    "inspect",
    "import_torch",
    "export_torch",
    "explore",
    "study",
    "convergence",
    "shapes",
    "bench",
    "evaluate",
    "import_inception",
    "explain.__main__",
    "sft.__main__",
  }
  assert {c.removeprefix("cyclejax.") for c in COMMANDS} >= expected


def offenders(names, bad) -> dict[str, object]:
  """{module: what it does wrong} for every module where bad(module) is not empty."""
  found = {name: bad(name) for name in names}
  return {name: what for name, what in found.items() if what}


def test_nothing_imports_a_command():
  assert not offenders(MODULES, lambda n: internal(imports(n)) & COMMANDS)


def test_nothing_below_the_trainer_imports_it():
  # perf/: the benchmarks time the trainer's step, beside the commands.
  below = [n for n in LIBRARY if room(n) != "perf"]
  assert not offenders(below, lambda n: {"cyclejax.train"} & imports(n))


def test_models_import_only_jax_flax_numpy_and_themselves():
  models = [n for n in LIBRARY if room(n) == "models"]
  assert models
  assert not offenders(
    models,
    lambda n: (
      (third_party(imports(n)) - {"jax", "flax", "numpy"})
      | {m for m in internal(imports(n)) if room(m) != "models"}
    ),
  )


def test_data_never_imports_models():
  data = [n for n in LIBRARY if room(n) == "data"]
  assert not offenders(data, lambda n: {m for m in imports(n) if room(m) == "models"})


def test_the_objective_and_the_cam_library_never_import_config_or_run():
  rooms = [n for n in LIBRARY if room(n) in ("gan", "explain")]
  assert not offenders(
    rooms, lambda n: {m for m in imports(n) if m == "cyclejax.config" or room(m) == "run"}
  )


def test_the_config_schema_builds_no_network_and_imports_no_cam_maths():
  names = imports("cyclejax.config")
  assert not {n for n in names if room(n) == "explain"}
  calls = {
    node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    for node in ast.walk(ast.parse(MODULES["cyclejax.config"].read_text()))
    if isinstance(node, ast.Call)
  }
  assert not calls & {"build_generator", "build_discriminator", "init", "lazy_init", "apply"}


def test_only_run_imports_orbax_and_only_interop_and_perf_import_torch():
  def bad(name):
    parties = third_party(imports(name))
    wrong = set()
    if "orbax" in parties and room(name) != "run":
      wrong.add("orbax")
    if parties & {"torch", "torchvision"} and room(name) not in ("interop", "perf"):
      wrong.add("torch")
    return wrong

  assert not offenders(MODULES, bad)


def _string_constants(tree: ast.AST) -> set[str]:
  docstrings = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
      body = node.body
      if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        docstrings.add(id(body[0].value))
  return {
    node.value
    for node in ast.walk(tree)
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
  }


def test_only_run_workdir_spells_a_runs_file_names():
  others = [n for n in MODULES if n != "cyclejax.run.workdir"]
  assert not offenders(
    others, lambda n: _string_constants(ast.parse(MODULES[n].read_text())) & RUN_FILE_NAMES
  ), "use cyclejax.run.workdir.Workdir"


def test_each_room_imports_only_the_rooms_its_row_allows():
  # perf/ may import anything but commands; a new capability's package has its own row.
  checked = [n for n in LIBRARY if room(n) in ROOMS]

  def bad(name):
    allowed = ROOMS[room(name)] | {room(name)}
    return {m for m in internal(imports(name)) - LEAVES if room(m) not in allowed}

  assert not offenders(checked, bad)


def test_no_import_cycles():
  graph = {name: internal(imports(name)) - COMMANDS for name in LIBRARY}
  index, low, stack, on_stack, cycles = {}, {}, [], set(), []

  def visit(v):  # Tarjan's strongly connected components
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in graph.get(v, ()):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        cycles.append(sorted(component))

  for v in graph:
    if v not in index:
      visit(v)
  assert not cycles, cycles


def test_the_rules_see_real_imports():
  """The parser finds what the code imports (a check that could not fail is no check)."""
  assert "cyclejax.gan.state" in imports("cyclejax.train")
  assert "cyclejax.gan" in imports("cyclejax.train")
  assert "cyclejax.explain.cams" in imports("cyclejax.gan.xai")
  assert "torch" in third_party(imports("cyclejax.perf.torch_step"))
  assert "cyclejax.explain.__main__" in COMMANDS and "cyclejax.main" in COMMANDS
