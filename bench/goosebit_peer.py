"""gooseBit, a Python hawkBit-DDI server (no signatures, no MACs), as the peer of the peers
benchmark (``bench/peers.py``): installed from PyPI at the versions
``bench/peer-requirements/goosebit.txt`` pins, into a virtual environment of its own under
``build/peers/`` (made once, reused), its schema created by its own ORM, served by uvicorn in a
process of its own on loopback. Devices register themselves at their first poll (gooseBit's
default, no device authentication)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
VERSION = "0.2.12"
REQUIREMENTS = REPO / "bench" / "peer-requirements" / "goosebit.txt"
VENV = REPO / "build" / "peers" / f"goosebit-{VERSION}"
_SCHEMA = """
import asyncio
from tortoise import Tortoise
from goosebit.db.config import TORTOISE_CONF

async def main():
    await Tortoise.init(config=TORTOISE_CONF)
    await Tortoise.generate_schemas()
    await Tortoise.close_connections()

asyncio.run(main())
"""


def python() -> Path:
    """The peer's interpreter, installing it on first use."""
    exe = VENV / "bin" / "python"
    stamp = VENV / ".requirements"
    if exe.exists() and stamp.exists() and stamp.read_text() == REQUIREMENTS.read_text():
        return exe
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run([str(exe), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "-r", str(REQUIREMENTS), f"goosebit=={VERSION}"], check=True)
    stamp.write_text(REQUIREMENTS.read_text())
    return exe


def serve(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    """gooseBit on ``127.0.0.1:port`` with a fresh SQLite database under ``tmp``."""
    exe = python()
    env = {**os.environ, "GOOSEBIT_DB_URI": f"sqlite:///{tmp / 'goosebit.sqlite3'}",
           "GOOSEBIT_ARTIFACTS_DIR": str(tmp / "goosebit-artifacts"),
           "GOOSEBIT_PORT": str(port)}
    subprocess.run([str(exe), "-c", _SCHEMA], check=True, env=env, cwd=tmp,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = subprocess.Popen(
        [str(exe), "-m", "uvicorn", "goosebit:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/DEFAULT/controller/v1/warm-up",
                         timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise RuntimeError(f"gooseBit exited with {proc.returncode}")
    proc.terminate()
    raise RuntimeError("gooseBit did not start")
