"""Stripe's request encoding: form (or query) pairs in bracket notation, checked against a parameter spec.

`line_items[0][price]=p&metadata[k]=v&expand[]=x` becomes ``{"line_items": [{"price": "p"}], "metadata":
{"k": "v"}, "expand": ["x"]}``; arrays come as `a[0]`, `a[1]` (what the SDK sends) or `a[]`. Every value
arrives as a string, so the spec converts and validates; an unknown parameter is refused with Stripe's
`parameter_unknown`, a missing one with `parameter_missing`, an empty string where a value cannot be unset
with `parameter_invalid_empty`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from app.sandbox.stripe._errors import param_error

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
MAX_METADATA_KEYS = 50


def decode_pairs(raw: bytes | str) -> list[tuple[str, str]]:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return parse_qsl(text, keep_blank_values=True)


def nest(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Bracket-notation pairs into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise param_error(f"Invalid parameter name: {key}", key)
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        node = root
        for depth, part in enumerate(path):
            if part == "":
                part = str(len(node))
            last = depth == len(path) - 1
            if last:
                if isinstance(node.get(part), dict):
                    raise param_error(f"Invalid hash: {key}", key)
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise param_error(f"Invalid hash: {key}", key)
                node = child
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def _name(prefix: str, key: str | int) -> str:
    return f"{prefix}[{key}]" if prefix else str(key)


def _one_of(choices: tuple[str, ...]) -> str:
    if len(choices) == 1:
        return choices[0]
    return ", ".join(choices[:-1]) + f", or {choices[-1]}"


class Spec:
    """How one parameter is read from its string form."""

    nullable = False

    def parse(self, value: Any, name: str) -> Any:
        raise NotImplementedError

    def scalar(self, value: Any, name: str, kind: str) -> str:
        if not isinstance(value, str):
            raise param_error(f"Invalid {kind}: {name} must be a {kind}, not a hash or array", name)
        return value

    def empty(self, name: str) -> Any:
        if self.nullable:
            return None
        raise param_error(
            f"You passed an empty string for '{name}'. We assume empty values are an attempt to unset a "
            f"parameter; however '{name}' cannot be unset. You should remove '{name}' from your request or "
            "supply a non-empty value.",
            name,
            "parameter_invalid_empty",
        )


class Str(Spec):
    def __init__(self, *, nullable: bool = False, max_length: int = 5000) -> None:
        self.nullable = nullable
        self.max_length = max_length

    def parse(self, value: Any, name: str) -> Any:
        text = self.scalar(value, name, "string")
        if text == "":
            return self.empty(name)
        if len(text) > self.max_length:
            raise param_error(
                f"Invalid {name}: must be at most {self.max_length} characters", name, "parameter_invalid_string"
            )
        return text


class Int(Spec):
    def __init__(self, *, minimum: int | None = None, maximum: int | None = None, nullable: bool = False) -> None:
        self.minimum, self.maximum, self.nullable = minimum, maximum, nullable

    def parse(self, value: Any, name: str) -> Any:
        text = self.scalar(value, name, "integer")
        if text == "":
            return self.empty(name)
        if not re.fullmatch(r"-?\d+", text):
            raise param_error(f"Invalid integer: {text}", name, "parameter_invalid_integer")
        number = int(text)
        if self.minimum is not None and number < self.minimum:
            raise param_error(f"This value must be greater than or equal to {self.minimum}.", name)
        if self.maximum is not None and number > self.maximum:
            raise param_error(f"This value must be less than or equal to {self.maximum}.", name)
        return number


class Dec(Spec):
    def parse(self, value: Any, name: str) -> Any:
        text = self.scalar(value, name, "decimal")
        try:
            return Decimal(text)
        except InvalidOperation:
            raise param_error(f"Invalid decimal: {text}", name) from None


class Bool(Spec):
    def parse(self, value: Any, name: str) -> Any:
        text = self.scalar(value, name, "boolean")
        if text not in ("true", "false"):
            raise param_error(f"Invalid boolean: {text}", name)
        return text == "true"


class Enum(Spec):
    def __init__(self, *choices: str, nullable: bool = False) -> None:
        self.choices = choices
        self.nullable = nullable

    def parse(self, value: Any, name: str) -> Any:
        text = self.scalar(value, name, "string")
        if text == "":
            return self.empty(name)
        if text not in self.choices:
            raise param_error(f"Invalid {name}: must be one of {_one_of(self.choices)}", name)
        return text


class Ts(Spec):
    """A Unix timestamp, or `now` where Stripe allows it."""

    def __init__(self, *, allow_now: bool = False, nullable: bool = False) -> None:
        self.allow_now, self.nullable = allow_now, nullable

    def parse(self, value: Any, name: str) -> Any:
        text = self.scalar(value, name, "timestamp")
        if text == "":
            return self.empty(name)
        if self.allow_now and text == "now":
            return "now"
        if not re.fullmatch(r"\d+", text):
            raise param_error(f"Invalid timestamp: must be an integer Unix timestamp{' or now' * self.allow_now}", name)
        return int(text)


class Metadata(Spec):
    """Free-form string map; `metadata[k]=` removes a key, `metadata=` clears them all (returned as {})."""

    nullable = True

    def parse(self, value: Any, name: str) -> Any:
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise param_error(f"Invalid object: {name} must be a hash", name)
        if len(value) > MAX_METADATA_KEYS:
            raise param_error(f"Invalid {name}: must have at most {MAX_METADATA_KEYS} keys", name)
        out: dict[str, str | None] = {}
        for key, item in value.items():
            if not isinstance(item, str):
                raise param_error(f"Invalid {name}[{key}]: metadata values must be strings", f"{name}[{key}]")
            if len(key) > 40 or len(item) > 500:
                raise param_error(f"Invalid {name}: keys are at most 40 and values 500 characters", name)
            out[key] = item if item != "" else None
        return out


class Obj(Spec):
    def __init__(self, fields: dict[str, Spec], *, required: tuple[str, ...] = (), nullable: bool = False) -> None:
        self.fields, self.required, self.nullable = fields, required, nullable

    def parse(self, value: Any, name: str) -> Any:
        if value == "" and self.nullable:
            return None
        if not isinstance(value, dict):
            raise param_error(f"Invalid object: {name or 'body'} must be a hash", name)
        return read(self.fields, value, required=self.required, prefix=name)


class Arr(Spec):
    def __init__(self, item: Spec, *, max_items: int = 100, nullable: bool = False) -> None:
        self.item, self.max_items, self.nullable = item, max_items, nullable

    def parse(self, value: Any, name: str) -> Any:
        if value == "" and self.nullable:
            return []
        if isinstance(value, dict):  # `a[x]=…` where an array was expected
            raise param_error(f"Invalid array: {name} must be an array", name)
        items = value if isinstance(value, list) else [value]
        if len(items) > self.max_items:
            raise param_error(f"Invalid array: {name} may hold at most {self.max_items} items", name)
        return [self.item.parse(v, _name(name, i)) for i, v in enumerate(items)]


class Loose(Spec):
    """A nested structure taken as sent (`true`/`false` become booleans); for settings the stand-in only stores."""

    def parse(self, value: Any, name: str) -> Any:
        if isinstance(value, dict):
            return {k: self.parse(v, _name(name, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.parse(v, _name(name, i)) for i, v in enumerate(value)]
        return {"true": True, "false": False}.get(value, value)


def read(fields: dict[str, Spec], raw: dict[str, Any], *, required: tuple[str, ...] = (), prefix: str = "") -> dict:
    """Convert ``raw`` by ``fields``: unknown keys and missing required ones are refused as Stripe does."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        spec = fields.get(key)
        full = _name(prefix, key)
        if spec is None:
            raise param_error(f"Received unknown parameter: {full}", full, "parameter_unknown")
        out[key] = spec.parse(value, full)
    for key in required:
        if out.get(key) is None:
            full = _name(prefix, key)
            raise param_error(f"Missing required param: {full}.", full, "parameter_missing")
    return out


EXPAND = Arr(Str(), max_items=50)
LIST_PARAMS: dict[str, Spec] = {
    "limit": Int(minimum=1, maximum=100),
    "starting_after": Str(),
    "ending_before": Str(),
    "expand": EXPAND,
}
RANGE = Obj({"gt": Int(), "gte": Int(), "lt": Int(), "lte": Int()})


def params(fields: dict[str, Spec], raw: dict[str, Any], *, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Top-level parameters: every endpoint also takes `expand`."""
    return read({**fields, "expand": EXPAND}, raw, required=required)
