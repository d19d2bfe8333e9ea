"""Constraints and security as the server applies them.

* Request bodies declared with ``forbid_unknown_fields=True`` are closed objects:
  ``additionalProperties: false`` (the server answers 422 for an unknown field).
* Operations on ``PUBLIC_PATHS`` (the auth middleware skips them) declare ``security: []``; everything else
  inherits the document's bearer requirement. Litestar cannot express an empty per-operation security list,
  so it is set on the built document at start-up, from the same list the middleware uses.
* Litestar renders ``Optional[Annotated[str, Meta(max_length=200)]]`` as ``{"oneOf": [...], "maxLength": 200}``.
  That is valid JSON Schema, but generators (SDKs, fuzzers) often ignore keywords beside ``oneOf``; the
  constraints are moved into the non-null branches, which means the same thing and is read by everyone.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.spec import Components, OpenAPI, Operation, Reference
from litestar.openapi.spec import Schema as SchemaObject
from litestar.typing import FieldDefinition

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema

_OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_CONSTRAINTS = (
    "max_length",
    "min_length",
    "pattern",
    "minimum",
    "maximum",
    "exclusive_minimum",
    "exclusive_maximum",
    "multiple_of",
    "max_items",
    "min_items",
    "unique_items",
    "contains",
)


_NUMERIC_BOUNDS = {"gt": "exclusive_minimum", "ge": "minimum", "lt": "exclusive_maximum", "le": "maximum"}


def _numeric_bounds(t: msgspec.inspect.Type) -> dict[str, float]:
    """The bounds of a (possibly optional, possibly annotated) int or float field."""
    if isinstance(t, msgspec.inspect.UnionType):
        arms = [a for a in t.types if not isinstance(a, msgspec.inspect.NoneType)]
        return _numeric_bounds(arms[0]) if len(arms) == 1 else {}
    if isinstance(t, msgspec.inspect.Metadata):
        return _numeric_bounds(t.type)
    if isinstance(t, msgspec.inspect.IntType | msgspec.inspect.FloatType):
        return {k: getattr(t, k) for k in _NUMERIC_BOUNDS if getattr(t, k) is not None}
    return {}


class ClosedStructSchemaPlugin(StructSchemaPlugin):
    """Litestar's msgspec schema, plus ``additionalProperties: false`` where the struct forbids extras, plus the
    numeric bounds Litestar drops when they are 0 (``gt=0`` is falsy to its ``if value:`` check)."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if not isinstance(info, msgspec.inspect.StructType):
            return schema
        if info.forbid_unknown_fields:
            schema.additional_properties = False
        for field in info.fields:
            prop = (schema.properties or {}).get(field.encode_name)
            if not isinstance(prop, SchemaObject):
                continue
            targets = [b for b in (prop.one_of or prop.any_of or [prop]) if isinstance(b, SchemaObject)]
            for bound, value in _numeric_bounds(field.type).items():
                for target in targets:
                    if target.type in ("number", "integer") and getattr(target, _NUMERIC_BOUNDS[bound]) is None:
                        setattr(target, _NUMERIC_BOUNDS[bound], value)
        return schema


def _push_constraints_into_branches(schema: SchemaObject, seen: set[int]) -> None:
    if id(schema) in seen:
        return
    seen.add(id(schema))
    branches = [b for b in (schema.one_of or schema.any_of or []) if isinstance(b, SchemaObject)]
    if branches:
        for name in _CONSTRAINTS:
            value = getattr(schema, name)
            if value is None:
                continue
            for branch in branches:
                if branch.type != "null" and getattr(branch, name) is None:
                    setattr(branch, name, value)
            setattr(schema, name, None)
    children: list[object] = [
        *(schema.one_of or []),
        *(schema.any_of or []),
        *(schema.all_of or []),
        *(schema.prefix_items or []),
        *(schema.properties or {}).values(),
        schema.items,
        schema.additional_properties,
    ]
    for child in children:
        if isinstance(child, SchemaObject):
            _push_constraints_into_branches(child, seen)


def operations(document: OpenAPI) -> list[tuple[str, str, Operation]]:
    """Every (path, method, operation) of the document."""
    out = []
    for path, item in (document.paths or {}).items():
        for method in _OPERATIONS:
            operation = getattr(item, method, None)
            if operation is not None:
                out.append((path, method, operation))
    return out


def finish_constraints(document: OpenAPI, public_paths: list[str]) -> None:
    """Apply the adjustments above to the document (idempotent)."""
    patterns = [re.compile(p) for p in public_paths]
    seen: set[int] = set()
    components = document.components if isinstance(document.components, Components) else None
    for schema in ((components.schemas or {}) if components else {}).values():
        if isinstance(schema, SchemaObject):
            _push_constraints_into_branches(schema, seen)
    for path, _, operation in operations(document):
        if any(p.search(path) for p in patterns):
            operation.security = []
        for parameter in operation.parameters or []:
            if not isinstance(parameter, Reference) and isinstance(parameter.schema, SchemaObject):
                _push_constraints_into_branches(parameter.schema, seen)
