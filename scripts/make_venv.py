"""Create the project's virtual environment, with pip, on a machine that may lack ensurepip.

Debian and Ubuntu split `ensurepip` into the python3-venv package, so a fresh machine
with only python3 cannot run `python3 -m venv` as is. Then we make the venv without
pip and install pip into it from its wheel on PyPI (checked against PyPI's sha256).
"""

import hashlib
import json
import subprocess
import sys
import tempfile
import urllib.request
import venv
from pathlib import Path

SIMPLE_API = "https://pypi.org/simple/pip/"


def newest_pip_wheel() -> dict:
    request = urllib.request.Request(
        SIMPLE_API, headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    wheels = [
        f for f in files if f["filename"].endswith("-py3-none-any.whl") and not f.get("yanked")
    ]
    return wheels[-1]


def bootstrap_pip(python: Path) -> None:
    wheel = newest_pip_wheel()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / wheel["filename"]
        with urllib.request.urlopen(wheel["url"], timeout=120) as response:
            path.write_bytes(response.read())
        if hashlib.sha256(path.read_bytes()).hexdigest() != wheel["hashes"]["sha256"]:
            sys.exit(f"{wheel['filename']} does not match PyPI's sha256; not installing it.")
        # A wheel is a zip of importable code: pip can run from its own wheel.
        subprocess.run([str(python), f"{path}/pip", "install", "-q", str(path)], check=True)


def main(target: str) -> None:
    root = Path(target)
    python = root / "bin" / "python"
    try:
        venv.create(root, with_pip=True, clear=True)
    except (subprocess.CalledProcessError, OSError, SystemExit) as exc:
        print(f"venv with pip failed ({exc}); installing pip from PyPI instead.", file=sys.stderr)
        venv.create(root, with_pip=False, clear=True)
        bootstrap_pip(python)
    if subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True).returncode:
        venv.create(root, with_pip=False, clear=True)
        bootstrap_pip(python)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".venv")
