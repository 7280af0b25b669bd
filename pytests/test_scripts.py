"""scripts/test.sh outside CI (issue 14, defect 10): without root it names the missing
Debian packages and stops before building; it uses the active virtualenv."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "test.sh"


def _stub(bindir: Path, name: str, body: str) -> None:
    f = bindir / name
    f.write_text("#!/bin/sh\n" + body + "\n")
    f.chmod(0o755)


def _sandbox(tmp_path: Path, *, uid: int, gtest: bool) -> tuple[Path, dict[str, str]]:
    """A copy of the script in a scratch tree, and a PATH whose id, dpkg and sudo are
    stand-ins: the script's own decisions are what is tested, not this machine's."""
    tree = tmp_path / "tree"
    (tree / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, tree / "scripts" / "test.sh")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _stub(bindir, "id", f"echo {uid}")
    _stub(bindir, "dpkg", 'case "$2" in libgtest-dev) exit ' + ("0" if gtest else "1") + ";; esac; exit 0")
    _stub(bindir, "sudo", "exit 1")  # sudo that needs a password
    _stub(bindir, "apt-get", f"echo apt-get \"$@\" >> {tmp_path}/apt.log; exit 0")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = f"{bindir}:/usr/bin:/bin"
    return tree, env


def test_without_root_it_names_the_missing_package_and_builds_nothing(tmp_path):
    tree, env = _sandbox(tmp_path, uid=1000, gtest=False)
    p = subprocess.run(["bash", str(tree / "scripts" / "test.sh")], cwd=tree, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "missing system packages: libgtest-dev" in p.stderr
    assert "apt-get install libgtest-dev" in p.stderr
    assert not (tree / "build").exists() and not (tree / ".venv").exists()
    assert not (tmp_path / "apt.log").exists()


def test_it_names_every_missing_package_redis_server_included(tmp_path):
    tree, env = _sandbox(tmp_path, uid=1000, gtest=False)
    _stub(tmp_path / "bin", "dpkg", "exit 1")  # neither GoogleTest nor redis-server
    p = subprocess.run(["bash", str(tree / "scripts" / "test.sh")], cwd=tree, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "missing system packages: libgtest-dev redis-server" in p.stderr


def test_as_root_it_installs_the_missing_package(tmp_path):
    tree, env = _sandbox(tmp_path, uid=0, gtest=False)
    env["VIRTUAL_ENV"] = str(tmp_path / "venv")  # a venv whose python stops the script
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    _stub(tmp_path / "venv" / "bin", "python", "exit 3")
    p = subprocess.run(["bash", str(tree / "scripts" / "test.sh")], cwd=tree, env=env,
                       capture_output=True, text=True, timeout=60)
    assert "install -y -qq libgtest-dev" in (tmp_path / "apt.log").read_text()
    assert p.returncode == 3


def test_it_uses_the_active_virtualenv(tmp_path):
    tree, env = _sandbox(tmp_path, uid=1000, gtest=True)
    venv = tmp_path / "active"
    (venv / "bin").mkdir(parents=True)
    _stub(venv / "bin", "python", f'echo "$@" >> {tmp_path}/python.log; exit 3')
    env["VIRTUAL_ENV"] = str(venv)
    p = subprocess.run(["bash", str(tree / "scripts" / "test.sh"), "quick"], cwd=tree, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 3
    assert f"== Python: {venv}/bin/python" in p.stdout
    assert "-m pip install" in (tmp_path / "python.log").read_text()
    assert not (tree / ".venv").exists()


def test_an_unknown_mode_is_a_usage_error(tmp_path):
    tree, env = _sandbox(tmp_path, uid=1000, gtest=True)
    p = subprocess.run(["bash", str(tree / "scripts" / "test.sh"), "fast"], cwd=tree, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "usage" in p.stderr


def test_readme_says_how_to_run_the_quick_part():
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/test.sh quick" in readme
