"""Every area's ``services`` module (the one door other areas import, docs/architecture.md) and the two modules
beside the areas import first, each into an interpreter that has imported nothing of ``app`` yet. Two
``services`` modules importing each other would fail here for one of the two orders (``cannot import name …
from partially initialized module``), whichever order the server or the worker happens to import them in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "app" / "domain"

# One interpreter loads the third-party libraries once, then forks a child per module: each child starts with
# no ``app`` module loaded and imports one, so only the order of our own imports is under test.
_PROBE = """
import json, os, sys
import arq, httpx, litestar, msgspec, sqlalchemy, sqlalchemy.ext.asyncio, structlog  # noqa: F401
failed = {}
for module in json.loads(sys.argv[1]):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            __import__(module)
        except BaseException as exc:
            os.write(write, f"{type(exc).__name__}: {exc}".encode())
            os._exit(1)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        message = pipe.read()
    if os.waitpid(pid, 0)[1] != 0:
        failed[module] = message or "died"
print(json.dumps(failed))
"""


def doors() -> list[str]:
    found = [*DOMAIN.glob("*/services.py"), *DOMAIN.glob("*/services/__init__.py")]
    return sorted({f"app.domain.{p.relative_to(DOMAIN).parts[0]}.services" for p in found})


def test_every_door_imports_first_in_a_fresh_interpreter() -> None:
    modules = doors()
    assert {f"app.domain.{a}.services" for a in ("alerts", "events", "telegram", "webhooks")} <= set(modules)
    modules += ["app.domain.jobcontext", "app.domain.delivery"]
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(modules)], capture_output=True, text=True, timeout=300, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}
