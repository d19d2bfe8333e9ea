"""Shapes SDK generators turn into junk classes, rewritten to the same meaning in a form they read well.

* An optional query parameter typed ``Literal[...] | None`` is rendered ``{"type": ["null", "string"],
  "enum": [..., null]}``. A query string cannot carry a JSON null (leaving the parameter out is how a client
  says "none"), and openapi-python-client makes three classes of it (``…Type1``, ``…Type2Type1``,
  ``…Type3Type1``). It becomes ``{"type": "string", "enum": [...]}``.
* A ``oneOf`` with a single branch (a partial-update field that may be omitted but not null) is that branch;
  generators otherwise wrap it (``…EventTypesType0Item``).
"""

from __future__ import annotations

import dataclasses

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
