"""Shapes SDK generators turn into junk classes, rewritten to the same meaning in a form they read well.

* An optional query parameter typed ``Literal[...] | None`` is rendered ``{"type": ["null", "string"],
  "enum": [..., null]}``. A query string cannot carry a JSON null (leaving the parameter out is how a client
  says "none"), and openapi-python-client makes three classes of it (``…Type1``, ``…Type2Type1``,
  ``…Type3Type1``). It becomes ``{"type": "string", "enum": [...]}``.
* A nullable enum property of a body schema (``{"type": ["null", "string"], "enum": [..., null]}``) becomes
  ``oneOf: [{"$ref": <a named enum>}, {"type": "null"}]``: generators read a named enum plus null as
  ``Enum | None`` instead of making three ``…TypeN`` classes. Enums with the same values share one name.
* A ``oneOf`` with a single branch (a partial-update field that may be omitted but not null) is that branch;
  generators otherwise wrap it (``…EventTypesType0Item``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from litestar.openapi.spec import Components, OpenAPI, OpenAPIType, Reference
from litestar.openapi.spec import Schema as SchemaObject

from app.server.openapi._constraints import operations


def _drop_null(schema: SchemaObject) -> SchemaObject:
    """The schema without its ``null`` alternative (type list, enum member or ``oneOf`` branch)."""
    if schema.one_of:
        rest = [b for b in schema.one_of if not (isinstance(b, SchemaObject) and b.type == OpenAPIType.NULL)]
        if len(rest) == 1 and isinstance(rest[0], SchemaObject):
            return rest[0]
    if isinstance(schema.type, list | tuple) and OpenAPIType.NULL in schema.type:
        types = [t for t in schema.type if t != OpenAPIType.NULL]
        schema.type = types[0] if len(types) == 1 else types
        if schema.enum is not None:
            schema.enum = [v for v in schema.enum if v is not None]
    return schema


def _collapse(schema: SchemaObject, seen: set[int]) -> None:
    if id(schema) in seen:
        return
    seen.add(id(schema))
    if schema.one_of and len(schema.one_of) == 1 and isinstance(schema.one_of[0], SchemaObject):
        branch = schema.one_of[0]
        schema.one_of = None
        for field in dataclasses.fields(branch):
            if getattr(schema, field.name) is None:
                setattr(schema, field.name, getattr(branch, field.name))
    children = [
        *(schema.one_of or []),
        *(schema.any_of or []),
        *(schema.all_of or []),
        *(schema.properties or {}).values(),
        schema.items,
        schema.additional_properties,
    ]
    for child in children:
        if isinstance(child, SchemaObject):
            _collapse(child, seen)


def _nullable_enum(schema: SchemaObject) -> tuple[Any, ...] | None:
    """The values of a nullable enum (type-list form, or ``oneOf`` an inline enum and null), else None."""
    if schema.one_of and len(schema.one_of) == 2:
        branches = [b for b in schema.one_of if isinstance(b, SchemaObject)]
        nulls = [b for b in branches if b.type == OpenAPIType.NULL]
        enums = [b for b in branches if b.enum is not None and b.type != OpenAPIType.NULL]
        if len(nulls) == 1 and len(enums) == 1:
            return _values(enums[0].enum or [])
        return None
    if schema.enum is None or not isinstance(schema.type, list | tuple) or OpenAPIType.NULL not in schema.type:
        return None
    return _values(schema.enum)


def _values(enum: Sequence[Any]) -> tuple[Any, ...] | None:
    values = [v for v in enum if v is not None]
    if values and (all(isinstance(v, str) for v in values) or all(type(v) is int for v in values)):
        return tuple(values)
    return None


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _hoist_enums(schemas: dict[str, Any]) -> None:
    """Nullable enum properties → a named enum component (shared by equal value sets) or null."""
    named: dict[tuple[str, ...], str] = {}
    for name, schema in list(schemas.items()):
        if isinstance(schema, SchemaObject) and schema.enum is not None and not isinstance(schema.type, list):
            named.setdefault(tuple(schema.enum), name)
    for owner, schema in list(schemas.items()):
        if not isinstance(schema, SchemaObject):
            continue
        for prop, child in list((schema.properties or {}).items()):
            if not isinstance(child, SchemaObject):
                continue
            values = _nullable_enum(child)
            if values is None:
                continue
            enum_name = named.get(values)
            if enum_name is None:
                enum_name = _camel(prop) if _camel(prop) not in schemas else owner + _camel(prop)
                kind = OpenAPIType.STRING if isinstance(values[0], str) else OpenAPIType.INTEGER
                schemas[enum_name] = SchemaObject(type=kind, enum=list(values), title=enum_name)
                named[values] = enum_name
            assert schema.properties is not None
            schema.properties[prop] = SchemaObject(
                one_of=[Reference(ref=f"#/components/schemas/{enum_name}"), SchemaObject(type=OpenAPIType.NULL)],
                description=child.description,
                default=child.default,
            )


def simplify_shapes(document: OpenAPI) -> None:
    for _, _, operation in operations(document):
        for parameter in operation.parameters or []:
            if isinstance(parameter, Reference) or parameter.required or parameter.param_in != "query":
                continue
            if isinstance(parameter.schema, SchemaObject):
                parameter.schema = _drop_null(parameter.schema)
    components = document.components if isinstance(document.components, Components) else None
    seen: set[int] = set()
    for schema in ((components.schemas or {}) if components else {}).values():
        if isinstance(schema, SchemaObject):
            _collapse(schema, seen)
    if components is not None and components.schemas:
        _hoist_enums(components.schemas)
