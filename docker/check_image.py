"""Build-time check of an nnr-profile image against its entry in docker/compat.json.

Every Dockerfile runs ``python docker/check_image.py --cuda X.Y`` after installing
everything, so an image whose torch wheel, CUDA build, TensorFlow, profilers or tag drifted
from the compatibility table fails to build instead of measuring the wrong thing.

Standard library only (plus the frameworks it inspects). ``compare`` is pure, so
tests/test_docker.py exercises it without Docker, GPU or frameworks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

COMPAT_PATH = Path(__file__).with_name("compat.json")


def load_compat(path: Path = COMPAT_PATH) -> list[dict[str, Any]]:
    """The image entries of the compatibility table."""
    return json.loads(path.read_text(encoding="utf-8"))["images"]


def entry_for(cuda: str, images: list[dict[str, Any]]) -> dict[str, Any]:
    """The entry whose CUDA version is ``cuda`` (e.g. "12.8")."""
    matches = [image for image in images if image["cuda"] == cuda]
    if len(matches) != 1:
        raise SystemExit(f"compat.json has {len(matches)} entries for CUDA {cuda}")
    return matches[0]


# Each framework is probed in its own interpreter, as trials run one framework per process.
_PROBES = {
    "torch": (
        "import json, torch, torchvision; print(json.dumps({'torch': torch.__version__, "
        "'torch_cuda': torch.version.cuda, 'torchvision': torchvision.__version__}))"
    ),
    "tensorflow": (
        "import json, tensorflow as tf, keras; info = tf.sysconfig.get_build_info(); "
        "print(json.dumps({'tensorflow': tf.__version__, 'keras': keras.__version__, "
        "'tf_build_cuda': info.get('cuda_version'), "
        "'tf_build_cudnn': info.get('cudnn_version')}))"
    ),
    "nnr_profile": (
        "import json, nnr_profile; print(json.dumps({'nnr_profile': nnr_profile.__version__}))"
    ),
}


def _probe(code: str) -> dict[str, Any]:
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        print(run.stderr[-2000:], file=sys.stderr)
        return {}
    return json.loads(run.stdout.strip().splitlines()[-1])


def observe() -> dict[str, Any]:
    """What is actually installed in this image."""
    seen: dict[str, Any] = {
        "python": platform.python_version(),
        "nsys": shutil.which("nsys"),
        "nsys_version": None,
        "nvprof": shutil.which("nvprof"),
        "image": os.environ.get("NNR_PROFILE_IMAGE"),
    }
    for code in _PROBES.values():
        seen.update(_probe(code))
    if seen["nsys"]:
        run = subprocess.run(
            [seen["nsys"], "--version"], capture_output=True, text=True, check=False
        )
        seen["nsys_version"] = (run.stdout or run.stderr).strip() or None
    return seen


def _same_release(observed: str | None, expected: str) -> bool:
    """'12.5.1' matches '12.5', '9' matches '9.3' at the given precision."""
    if not observed:
        return False
    got = str(observed).split(".")
    want = expected.split(".")
    return got[: len(want)] == want


def compare(entry: dict[str, Any], seen: dict[str, Any]) -> list[str]:
    """Every way ``seen`` differs from the compat ``entry``; empty when the image is right."""
    problems: list[str] = []

    def expect(what: str, got: Any, want: Any) -> None:
        if got != want:
            problems.append(f"{what}: expected {want!r}, found {got!r}")

    expect("torch", seen.get("torch"), f"{entry['torch']}+{entry['torch_cuda_tag']}")
    expect("torch CUDA", seen.get("torch_cuda"), entry["cuda"])
    expect(
        "torchvision",
        seen.get("torchvision"),
        f"{entry['torchvision']}+{entry['torch_cuda_tag']}",
    )
    expect("tensorflow", seen.get("tensorflow"), entry["tensorflow"])
    expect("keras", seen.get("keras"), entry["keras"])
    if not _same_release(seen.get("tf_build_cuda"), entry["tf_build_cuda"]):
        problems.append(
            f"TensorFlow built for CUDA {seen.get('tf_build_cuda')!r}, "
            f"table says {entry['tf_build_cuda']}"
        )
    if not _same_release(seen.get("tf_build_cudnn"), entry["tf_build_cudnn"].split(".")[0]):
        problems.append(
            f"TensorFlow built for cuDNN {seen.get('tf_build_cudnn')!r}, "
            f"table says {entry['tf_build_cudnn']}"
        )
    if not _same_release(seen.get("python"), entry["python"]):
        problems.append(f"python: expected {entry['python']}.x, found {seen.get('python')!r}")
    if not seen.get("nsys") or not seen.get("nsys_version"):
        problems.append("nsys: not on PATH or `nsys --version` printed nothing")
    if entry["ships_nvprof"] and not seen.get("nvprof"):
        problems.append("nvprof: the table says this image ships nvprof, but it is not on PATH")
    version = seen.get("nnr_profile")
    if not version:
        problems.append("nnr_profile: not importable")
    image = seen.get("image") or ""
    if not version or version not in image or f"cuda{entry['cuda']}" not in image:
        problems.append(
            f"NNR_PROFILE_IMAGE={image!r} should name nnr-profile {version} and cuda{entry['cuda']}"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuda", required=True, help="CUDA line of this image, e.g. 12.8")
    parser.add_argument("--compat", type=Path, default=COMPAT_PATH)
    args = parser.parse_args(argv)
    entry = entry_for(args.cuda, load_compat(args.compat))
    seen = observe()
    for key, value in seen.items():
        print(f"{key:>15}: {value}")
    problems = compare(entry, seen)
    for problem in problems:
        print(f"MISMATCH {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"image matches compat.json entry {entry['name']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
