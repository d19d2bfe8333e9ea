"""Import what the API, the worker and `migrate` load at start, so their bytecode is written in the image.

Run by the Containerfile's builder stage. The runtime file system is read-only and PYTHONDONTWRITEBYTECODE is
set, so a module without bytecode in the image is compiled in memory at every start; compiling all ~4 600
modules of the dependencies instead would add ~60 MB for code that is never loaded (these add ~16 MB). A
module that moved in a dependency update only loses its bytecode (a warning here), never the build.
"""

from __future__ import annotations

import importlib
import sys

MODULES = (
    "app.__main__",
    "app.server.asgi",
    "app.server.http_protocol",
    "app.worker.settings",
    "alembic.command",
    "alembic.config",
    "arq.worker",
    "uvicorn.main",
    "uvicorn.loops.uvloop",
    "uvicorn.lifespan.on",
    "uvicorn.protocols.http.httptools_impl",
    "sqlalchemy.dialects.postgresql.asyncpg",
    "litestar._openapi.plugin",
)


def main() -> int:
    missing = []
    for name in MODULES:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            missing.append(name)
            print(f"bytecode warm-up: {name} not importable ({exc})", file=sys.stderr)
    print(f"bytecode warm-up: {len(MODULES) - len(missing)} of {len(MODULES)} entry modules imported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
