"""Stripe form decoding and request validation against Stripe's published OpenAPI spec.

Stripe sends parameters form-encoded in deepObject style (``a[b][0][c]=x``, ``expand[]=y``)
and every value arrives as a string. ``decode_form`` rebuilds the nesting; ``Operation``
checks the result against the operation's request schema the way Stripe's API does:
unknown parameters, missing required ones, ill-typed scalars, enums, string lengths and
empty strings where the spec does not allow ``""`` (Stripe's "unset" marker).

Errors are raised as ``ParamError`` carrying Stripe's message, ``param`` and ``code``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

Schema = dict[str, Any]

_INTEGER = re.compile(r"-?\d+\Z")
_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)\Z")


@dataclass
class ParamError(Exception):
    """A request parameter Stripe would refuse with 400 invalid_request_error."""

    message: str
    param: str
    code: str = "parameter_invalid"

    def __str__(self) -> str:
        return self.message


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Rebuild nested params from Stripe-style form pairs.

    Indexed segments (``[0]``) stay as string keys of a dict so the schema decides whether
    they form an array; ``[]`` appends. Raises ParamError on a key used both as a scalar and
    as a container (Stripe refuses those too).
    """
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        match = _KEY.match(raw_key)
        if match is None:
            raise ParamError(f"Invalid parameter name: {raw_key}", raw_key)
        segments = [match.group(1)] + re.findall(r"\[([^\[\]]*)\]", match.group(2))
        node: Any = root
        for depth, segment in enumerate(segments):
            last = depth == len(segments) - 1
            if segment == "":
                # "a[]" appends: give it the next free index of this container.
                segment = str(len(node))
            if last:
                if segment in node:
                    raise ParamError(f"Received duplicate parameter: {raw_key}", raw_key)
                node[segment] = value
            else:
                child = node.setdefault(segment, {})
                if not isinstance(child, dict):
                    raise ParamError(f"Invalid object: {raw_key}", raw_key)
                node = child
    return root


def join_param(parent: str, key: str) -> str:
    """Stripe's spelling of a nested parameter name: ``parent[key]``."""
    return f"{parent}[{key}]" if parent else key


class Resolver:
    """Follows local ``$ref``s one step at a time; Stripe's schema graph is cyclic."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self._spec = spec

    def resolve(self, schema: Schema) -> Schema:
        seen = 0
        while "$ref" in schema:
            seen += 1
            if seen > 64:
                raise ValueError(f"$ref chain too long at {schema['$ref']}")
            node: Any = self._spec
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            schema = node
        return schema


def _one_of_list(values: list[str]) -> str:
    shown = [v for v in values if v != ""]
    if len(shown) <= 2:
        return " or ".join(shown)
    return ", ".join(shown[:-1]) + ", or " + shown[-1]


class Validator:
    """Coerces decoded form values to the schema's types, raising ParamError like Stripe."""

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver

    def validate(self, value: Any, schema: Schema, param: str, *, unsettable: bool = False) -> Any:
        schema = self._resolver.resolve(schema)
        if value == "" and not unsettable and not self._allows_empty(schema):
            raise ParamError(
                f"You passed an empty string for '{param}'. We assume empty values are an attempt to "
                f"unset a parameter; however '{param}' cannot be unset. You should remove '{param}' "
                "from your request or supply a non-empty value.",
                param,
                "parameter_invalid_empty",
            )
        if "anyOf" in schema:
            return self._any_of(value, schema["anyOf"], param)
        kind = schema.get("type")
        if kind == "object":
            return self._object(value, schema, param)
        if kind == "array":
            return self._array(value, schema, param)
        if isinstance(value, dict):
            raise ParamError(f"Invalid {kind or 'value'}: {param} must be a scalar, not an object", param)
        if kind == "integer":
            if not _INTEGER.match(value):
                raise ParamError(f"Invalid integer: {value}", param, "parameter_invalid_integer")
            return int(value)
        if kind == "number":
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                raise ParamError(f"Invalid decimal: {value}", param, "parameter_invalid_number")
            return number
        if kind == "boolean":
            if value not in ("true", "false"):
                raise ParamError(f"Invalid boolean: {value}", param, "parameter_invalid_boolean")
            return value == "true"
        return self._string(value, schema, param)

    def _allows_empty(self, schema: Schema) -> bool:
        if "" in schema.get("enum", ()):
            return True
        return any(self._allows_empty(self._resolver.resolve(s)) for s in schema.get("anyOf", ()))

    def _string(self, value: str, schema: Schema, param: str) -> str:
        enum = schema.get("enum")
        # x-stripeBypassValidation marks enums Stripe keeps extending; the spec's list is not final.
        if enum and value not in enum and not schema.get("x-stripeBypassValidation"):
            raise ParamError(f"Invalid {param}: must be one of {_one_of_list(enum)}", param)
        limit = schema.get("maxLength")
        if limit is not None and len(value) > limit:
            raise ParamError(f"Invalid string: {value[:20]}...; must be at most {limit} characters", param)
        return value

    def _object(self, value: Any, schema: Schema, param: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ParamError(f"Invalid object: {param}", param)
        properties: dict[str, Schema] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        # Stripe's request objects are closed unless they say what extra keys may hold (metadata).
        closed = extra is False or (extra is None and properties)
        result: dict[str, Any] = {}
        for key, item in value.items():
            name = join_param(param, key)
            if key in properties:
                result[key] = self.validate(item, properties[key], name)
            elif isinstance(extra, dict):
                result[key] = self.validate(item, extra, name, unsettable=True)
            elif closed:
                raise ParamError(f"Received unknown parameter: {name}", name, "parameter_unknown")
            else:
                result[key] = item
        for key in schema.get("required", ()):
            if key not in value:
                name = join_param(param, key)
                raise ParamError(f"Missing required param: {name}.", name, "parameter_missing")
        return result

    def _array(self, value: Any, schema: Schema, param: str) -> list[Any]:
        if not isinstance(value, dict) or not all(_INTEGER.match(k) for k in value):
            raise ParamError(f"Invalid array: {param}", param)
        items = schema.get("items", {})
        ordered = sorted(value.items(), key=lambda kv: int(kv[0]))
        return [self.validate(item, items, join_param(param, key)) for key, item in ordered]

    def _any_of(self, value: Any, branches: list[Schema], param: str) -> Any:
        errors: list[ParamError] = []
        for branch in branches:
            try:
                return self.validate(value, branch, param)
            except ParamError as exc:
                errors.append(exc)
        # Report the branch whose shape fits the value: a container error for a container,
        # a scalar error for a scalar, as Stripe does.
        for branch, error in zip(branches, errors, strict=True):
            container = self._resolver.resolve(branch).get("type") in ("object", "array")
            if container == isinstance(value, dict):
                raise error
        raise errors[0]


@dataclass(frozen=True)
class Operation:
    """One method+path of the spec, able to validate a request's decoded parameters."""

    method: str
    template: str
    pattern: re.Pattern[str]
    body_schema: Schema | None
    query_schema: Schema

    def validate(self, params: dict[str, Any], validator: Validator) -> dict[str, Any]:
        schema = self.body_schema if self.method == "post" else self.query_schema
        return validator.validate(params, schema or {"type": "object", "properties": {}}, "")


def path_pattern(template: str) -> re.Pattern[str]:
    """A regex matching the spec path `template` (`/v1/x/{id}`), its parameters as named groups."""
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(regex + r"\Z")


def load_operations(spec: dict[str, Any]) -> list[Operation]:
    """Every operation of the spec, with a path regex and its parameter schema."""
    operations = []
    for template, methods in spec["paths"].items():
        pattern = path_pattern(template)
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded", {})
            query = [p for p in op.get("parameters", []) if p["in"] == "query"]
            query_schema: Schema = {
                "type": "object",
                "properties": {p["name"]: p["schema"] for p in query},
                "required": [p["name"] for p in query if p.get("required")],
                "additionalProperties": False,
            }
            operations.append(Operation(method, template, pattern, body.get("schema"), query_schema))
    return operations
