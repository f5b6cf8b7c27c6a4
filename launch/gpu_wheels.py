"""Prepares and checks the wheels launch/gpu_bench.sh installs on a GPU machine that
reaches no package registry (Python 3.12, x86-64 Linux, with jax, flax, optax, orbax,
chex and a CUDA torch already installed).

  python launch/gpu_wheels.py download [--dir=.gpu_wheels]   # here, with registry access
  python launch/gpu_wheels.py check [--dir=.gpu_wheels]      # here or there

`download` fetches the packages cyclejax needs that the machine's image lacks (WHEELS,
the versions cyclejax is tested with) as cp312 manylinux wheels, builds a wheel here
for a pure-Python package published only as a source archive, then runs `check`.
`check` fails (exit status 1, one line per problem) unless the folder holds only wheels
that install on CPython 3.12 x86-64 Linux, one version of each project, whose
requirements (markers evaluated for that interpreter) are all met by the folder or by the
image (IMAGE), cyclejax's own dependencies included, within MAX_BYTES in all.

The folder is git-ignored and never committed. Needs only the standard library and pip.
"""

import argparse
import email.parser
import pathlib
import re
import subprocess
import sys
import zipfile

REPO = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO / ".gpu_wheels"
MAX_BYTES = 64 * 2**20  # what the GPU machine's tool carries beside the working tree

# What cyclejax needs beyond the image, at the versions tested here (pyproject.toml's
# dependencies and theirs). Binary wheels: grain, array-record, dm-tree.
WHEELS = {
  "grain": "0.2.18",
  "array-record": "0.8.6",  # grain, tensorflow-datasets
  "portpicker": "1.6.0",  # grain
  "ml-collections": "1.1.0",
  "tensorboardx": "2.6.5",
  "tensorflow-datasets": "4.9.10",
  "dm-tree": "0.1.10",  # tensorflow-datasets
  "immutabledict": "4.3.1",
  "promise": "2.3",  # a source archive only: built here (pure Python)
  "simple-parsing": "0.1.9",
  "docstring-parser": "0.18.0",  # simple-parsing
  "tensorflow-metadata": "1.21.0",
  "googleapis-common-protos": "1.76.0",  # tensorflow-metadata
  "termcolor": "3.3.0",
  "toml": "0.10.2",
}

# Python packages of the GPU machine's image ('cuda'; as listed on 2026-11-17), by name.
IMAGE = """
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy
coverage cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython
diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools formulaic
frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize
hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin
jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities
linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl
meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind
narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti
nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile
nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py
nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime
onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix
orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker
prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing
pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock
pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich
sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy seaborn
sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers
statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl
tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric
torchmetrics torchvision tqdm transformers treescope triton typer typing-extensions
typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
""".split()

# The target interpreter, for tags and markers.
TARGET = {
  "python_version": "3.12",
  "python_full_version": "3.12.3",
  "implementation_name": "cpython",
  "platform_python_implementation": "CPython",
  "sys_platform": "linux",
  "platform_system": "Linux",
  "platform_machine": "x86_64",
  "os_name": "posix",
}
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in (17, 24, 27, 28, 31, 34, 35)]
PLATFORMS += ["manylinux2014_x86_64", "manylinux1_x86_64"]


def canonical(name: str) -> str:
  return re.sub(r"[-_.]+", "-", name).lower()


def _markers():
  try:
    from packaging import markers  # noqa: PLC0415
  except ImportError:  # pip vendors it
    from pip._vendor.packaging import markers  # noqa: PLC0415
  return markers


def wheel_name(path: pathlib.Path) -> tuple[str, str, list[str]]:
  """(project, version, tags) of a wheel file name (PEP 427)."""
  parts = path.name[: -len(".whl")].split("-")
  if len(parts) not in (5, 6):
    raise ValueError(f"{path.name}: not a wheel file name")
  python, abi, platform = parts[-3:]
  tags = [
    f"{p}-{a}-{pl}" for p in python.split(".") for a in abi.split(".") for pl in platform.split(".")
  ]
  return canonical(parts[0]), parts[1], tags


def installs_on_target(tags: list[str]) -> bool:
  """Whether one of a wheel's tags fits CPython 3.12 on x86-64 Linux (glibc)."""
  for tag in tags:
    python, abi, platform = tag.split("-")
    if platform != "any" and platform not in PLATFORMS:
      continue
    if python in ("py3", "py2.py3", "cp312") and abi == "none":
      return True
    if python == "cp312" and abi == "cp312":
      return True
    if re.fullmatch(r"cp3\d+", python) and abi == "abi3" and int(python[3:]) <= 12:
      return True
  return False


def requirements(path: pathlib.Path) -> list[str]:
  """The wheel's Requires-Dist entries that apply on the target (no extras)."""
  with zipfile.ZipFile(path) as z:
    name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    metadata = email.parser.Parser().parsestr(z.read(name).decode("utf-8"))
  return [r for r in metadata.get_all("Requires-Dist") or [] if applies(r)]


def applies(requirement: str) -> bool:
  _, _, marker = requirement.partition(";")
  if not marker.strip():
    return True
  return _markers().Marker(marker.strip()).evaluate({**TARGET, "extra": ""})


def requirement_name(requirement: str) -> str:
  return canonical(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1))


def cyclejax_requirements() -> list[str]:
  """pyproject.toml's [project] dependencies."""
  text = (REPO / "pyproject.toml").read_text()
  block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
  return re.findall(r'"([^"]+)"', block)


def problems(folder: pathlib.Path, image=IMAGE, cyclejax: bool = True) -> list[str]:
  """Why the folder would not install and import on the GPU machine ([] if it would).

  Args:
    folder: the wheel folder.
    image: names of the packages the machine has.
    cyclejax: also require what cyclejax's pyproject.toml requires.
  """
  if not folder.is_dir():
    return [f"{folder}: no such folder (run: python launch/gpu_wheels.py download)"]
  out, have, versions = [], {canonical(n) for n in image}, {}
  wheels = sorted(folder.glob("*.whl"))
  for other in sorted(set(folder.iterdir()) - set(wheels)):
    out.append(f"{other.name}: not a wheel")
  for path in wheels:
    name, version, tags = wheel_name(path)
    versions.setdefault(name, []).append(version)
    if not installs_on_target(tags):
      out.append(f"{path.name}: does not install on CPython 3.12 x86-64 Linux")
  for name, vs in sorted(versions.items()):
    if len(vs) > 1:
      out.append(f"{name}: {len(vs)} versions ({', '.join(vs)}); keep one")
  available = have | set(versions)
  needs = [(path.name, r) for path in wheels for r in requirements(path)]
  needs += [("cyclejax", r) for r in (cyclejax_requirements() if cyclejax else ())]
  for who, requirement in needs:
    if requirement_name(requirement) not in available:
      out.append(
        f"{who} needs {requirement.split(';')[0].strip()}: neither in the folder nor in the image"
      )
  total = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
  if total > MAX_BYTES:
    out.append(f"{folder}: {total / 2**20:.1f} MiB, over the {MAX_BYTES / 2**20:.0f} MiB limit")
  return out


def download(folder: pathlib.Path, python: str) -> None:
  folder.mkdir(parents=True, exist_ok=True)
  platforms = [a for p in PLATFORMS for a in ("--platform", p)]
  for name, version in WHEELS.items():
    spec = f"{name}=={version}"
    if any(wheel_name(p)[:2] == (canonical(name), version) for p in folder.glob("*.whl")):
      continue
    binary = [
      *(python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"),
      *("--python-version", "3.12", "--implementation", "cp", *platforms),
      *("-d", str(folder), spec),
    ]
    if subprocess.run(binary).returncode != 0:
      # No wheel published (a source archive only): build one here, then check below
      # that it is pure Python (py3-none-any).
      print(f"{spec}: no cp312 wheel published; building one from the source archive")
      subprocess.run(
        [python, "-m", "pip", "wheel", "--no-deps", "-w", str(folder), spec], check=True
      )


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
    prog="python launch/gpu_wheels.py",
    description="Prepare (download) or check the cp312 wheels launch/gpu_bench.sh installs.",
  )
  parser.add_argument("command", choices=("download", "check"))
  parser.add_argument("--dir", type=pathlib.Path, default=DEFAULT_DIR, help="the wheel folder")
  parser.add_argument("--python", default=sys.executable, help="the pip to download with")
  args = parser.parse_args(argv)
  if args.command == "download":
    download(args.dir, args.python)
  found = problems(args.dir)
  for line in found:
    print(f"error: {line}", file=sys.stderr)
  if not found:
    files = sorted(args.dir.glob("*.whl"))
    total = sum(p.stat().st_size for p in files)
    print(f"{args.dir}: {len(files)} wheels, {total / 2**20:.1f} MiB, all requirements met")
  return 1 if found else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
