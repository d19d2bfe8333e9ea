"""Render compose.yaml the way `docker compose config` does, without a container engine.

YAML anchors and merge keys, `${VAR}` interpolation (`:-`, `-`, `:?`, `?`, `:+`, `+`, `$$`), profiles,
the short port syntax and the list/dict forms of `networks` — what compose.yaml uses. Not the whole
Compose specification: anything this module does not understand raises instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class ComposeError(ValueError):
    pass


class _Loader(yaml.SafeLoader):
    pass


class Reset:
    """Compose's `!reset` tag (drop an inherited value)."""


_Loader.add_constructor("!reset", lambda loader, node: Reset())
_Loader.add_constructor("!override", lambda loader, node: loader.construct_object(node, deep=True))

_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>.*))?$", re.S)


def _find_close(text: str, start: int) -> int:
    """Index of the '}' closing the '${' whose '{' is at ``start`` (defaults may nest ${...})."""
    depth = 1
    for i in range(start + 1, len(text)):
        if text.startswith("${", i):
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise ComposeError(f"unclosed ${{ in {text!r}")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Substitute variables in one string, as compose does."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
            continue
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if text.startswith("${", i):
            end = _find_close(text, i + 1)
            body = text[i + 2 : end]
            m = _BRACED.match(body)
            if m is None:
                raise ComposeError(f"invalid interpolation ${{{body}}}")
            name, op, arg = m.group("name"), m.group("op"), m.group("arg") or ""
            value = env.get(name)
            if op is None:
                out.append(value or "")
            elif op == ":-":
                out.append(value if value else interpolate(arg, env))
            elif op == "-":
                out.append(value if value is not None else interpolate(arg, env))
            elif op == ":?":
                if not value:
                    raise ComposeError(f"required variable {name} is missing a value: {interpolate(arg, env)}")
                out.append(value)
            elif op == "?":
                if value is None:
                    raise ComposeError(f"required variable {name} is missing a value: {interpolate(arg, env)}")
                out.append(value)
            elif op == ":+":
                out.append(interpolate(arg, env) if value else "")
            else:  # "+"
                out.append(interpolate(arg, env) if value is not None else "")
            i = end + 1
            continue
        m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)", text[i:])
        if m is None:
            raise ComposeError(f"invalid '$' in {text!r} (write $$ for a literal dollar)")
        out.append(env.get(m.group(1), ""))
        i += m.end()
    return "".join(out)


def _walk(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, list):
        return [_walk(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _walk(v, env) for k, v in value.items()}
    return value


def variables(text: str) -> set[str]:
    """Every variable name the file interpolates."""
    names = set()
    for m in re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)", text.replace("$$", "")):
        names.add(m.group(1) or m.group(2))
    return names


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (comments and blanks skipped), the subset of dotenv syntax .env.example uses."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ComposeError(f"{path}: not KEY=VALUE: {line!r}")
        env[key.strip()] = value.strip().strip("'\"")
    return env


@dataclass(frozen=True)
class Port:
    host_ip: str
    published: str
    target: int
    protocol: str


def parse_port(spec: Any) -> Port:
    """Short syntax `[[host_ip:]published:]target[/protocol]` or the long form mapping."""
    if isinstance(spec, dict):
        return Port(
            str(spec.get("host_ip", "")),
            str(spec.get("published", "")),
            int(spec["target"]),
            spec.get("protocol", "tcp"),
        )
    text = str(spec)
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
    parts = text.rsplit(":", 2)
    if len(parts) == 1:
        return Port("", "", int(parts[0]), proto)
    if len(parts) == 2:
        return Port("", parts[0], int(parts[1]), proto)
    return Port(parts[0].strip("[]"), parts[1], int(parts[2]), proto)


def service_networks(service: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    nets = service.get("networks")
    if nets is None:
        return {"default": {}}
    if isinstance(nets, list):
        return {n: {} for n in nets}
    return {n: (cfg or {}) for n, cfg in nets.items()}


def load(path: Path) -> dict[str, Any]:
    data = yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 (SafeLoader subclass)
    if not isinstance(data, dict):
        raise ComposeError(f"{path}: not a mapping")
    return data


def render(path: Path, env: Mapping[str, str], profiles: Iterable[str] = ()) -> dict[str, Any]:
    """The project as compose would run it with these profiles: interpolated, inactive services dropped."""
    raw = load(path)
    model = _walk({k: v for k, v in raw.items() if not k.startswith("x-")}, env)
    active = set(profiles)
    services = {
        name: svc
        for name, svc in (model.get("services") or {}).items()
        if not svc.get("profiles") or active & set(svc["profiles"])
    }
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        for dep, cfg in deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps):
            if dep not in services and (cfg or {}).get("required", True):
                raise ComposeError(
                    f"service {name} depends on {dep}, which is not enabled with profiles {sorted(active)}"
                )
        for net in service_networks(svc):
            if net != "default" and net not in (model.get("networks") or {}):
                raise ComposeError(f"service {name} uses undeclared network {net}")
        for s in svc.get("secrets") or []:
            source = s["source"] if isinstance(s, dict) else s
            if source not in (model.get("secrets") or {}):
                raise ComposeError(f"service {name} uses undeclared secret {source}")
    model["services"] = services
    return model


def all_profiles(path: Path) -> set[str]:
    return {p for svc in (load(path).get("services") or {}).values() for p in svc.get("profiles") or []}
