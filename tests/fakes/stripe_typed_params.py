"""Request validation against stripe-python 16's own parameter types, for endpoints newer than our spec.

Billing Meters (and the subscription-item writes) are absent from the 2023 OpenAPI copy, so for
them the contract is the SDK's generated `TypedDict`s (`stripe/params/...`), which come from
Stripe's current spec. `TypedParams(SomeCreateParams).validate(decoded)` coerces a decoded form
(`stripe_schema.decode_form`) the way `stripe_schema.Validator` does for spec operations: unknown
and missing parameters, ill-typed scalars, enums (`Literal`), arrays, nested objects, metadata
maps and Stripe's `""` unset marker; a refusal is a `ParamError` with Stripe's message and param.
"""

from __future__ import annotations

import decimal
import re
import sys
import types
import typing
from collections.abc import Mapping
from typing import Any, ForwardRef, Literal, NotRequired, Required, Union, get_args, get_origin

from stripe._request_options import RequestOptions
from stripe._stripe_object import UntypedStripeObject
from typing_extensions import is_typeddict

from tests.fakes.stripe_schema import ParamError, join_param

_INTEGER = re.compile(r"-?\d+\Z")
_NOT_PARAMS = frozenset(RequestOptions.__annotations__)  # how the SDK sends, not what Stripe receives


class TypedParams:
    """The parameters of one SDK params class (a `TypedDict`), resolved once."""

    def __init__(self, params_class: type) -> None:
        if not is_typeddict(params_class):
            raise TypeError(f"{params_class!r} is not a TypedDict")
        self.params_class = params_class

    def validate(self, params: dict[str, Any]) -> dict[str, Any]:
        """`params` coerced to the declared types.

        Raises:
            ParamError: as Stripe would answer the request (400 invalid_request_error).
        """
        return _typed_dict(params, self.params_class, "")


def _typed_dict(value: Any, cls: type, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParamError(f"Invalid object: {param}", param)
    fields = _fields(cls)
    required: frozenset[str] = getattr(cls, "__required_keys__", frozenset())
    result: dict[str, Any] = {}
    for key, item in value.items():
        name = join_param(param, key)
        if key not in fields:
            raise ParamError(f"Received unknown parameter: {name}", name, "parameter_unknown")
        result[key] = _value(item, fields[key], name, cls)
    for key in sorted(required - _NOT_PARAMS):
        if key not in value:
            name = join_param(param, key)
            raise ParamError(f"Missing required param: {name}.", name, "parameter_missing")
    return result


def _fields(cls: type) -> dict[str, Any]:
    return {k: v for k, v in cls.__annotations__.items() if k not in _NOT_PARAMS}


def _resolve(annotation: Any, owner: type) -> Any:
    """A string or forward reference evaluated in the params module's namespace."""
    if isinstance(annotation, ForwardRef):
        annotation = annotation.__forward_arg__
    if isinstance(annotation, str):
        namespace = {**vars(typing), **vars(sys.modules[owner.__module__])}
        return eval(annotation, namespace)  # the SDK's own generated annotations, never request input
    return annotation


def _value(value: Any, annotation: Any, param: str, owner: type) -> Any:
    annotation = _resolve(annotation, owner)
    origin = get_origin(annotation)
    if origin in (NotRequired, Required):
        return _value(value, get_args(annotation)[0], param, owner)
    if origin in (Union, types.UnionType):
        return _union(value, get_args(annotation), param, owner)
    if origin is Literal:
        choices = get_args(annotation)
        if value not in choices:
            shown = ", ".join(str(c) for c in choices if c != "")
            raise ParamError(f"Invalid {param}: must be one of {shown}", param)
        return value
    if origin in (list, typing.List):  # noqa: UP006 - the SDK's annotations use typing.List
        return _list(value, get_args(annotation)[0], param, owner)
    if origin in (dict, typing.Dict, UntypedStripeObject) or annotation is UntypedStripeObject:  # noqa: UP006
        return _map(value, param)
    if isinstance(annotation, type) and is_typeddict(annotation):
        return _typed_dict(value, annotation, param)
    if isinstance(value, dict):
        raise ParamError(f"Invalid {getattr(annotation, '__name__', 'value')}: {param} must be a scalar, not an object",
                         param)
    return _scalar(value, annotation, param)


def _scalar(value: str, annotation: Any, param: str) -> Any:
    if value == "":
        raise ParamError(
            f"You passed an empty string for '{param}'. We assume empty values are an attempt to unset a parameter; "
            f"however '{param}' cannot be unset. You should remove '{param}' from your request or supply a non-empty "
            "value.", param, "parameter_invalid_empty")
    if annotation is bool:
        if value not in ("true", "false"):
            raise ParamError(f"Invalid boolean: {value}", param, "parameter_invalid_boolean")
        return value == "true"
    if annotation is int:
        if not _INTEGER.match(value):
            raise ParamError(f"Invalid integer: {value}", param, "parameter_invalid_integer")
        return int(value)
    if annotation in (float, decimal.Decimal):
        try:
            number = decimal.Decimal(value)
        except decimal.InvalidOperation:
            raise ParamError(f"Invalid decimal: {value}", param, "parameter_invalid_number") from None
        if not number.is_finite():
            raise ParamError(f"Invalid decimal: {value}", param, "parameter_invalid_number")
        return float(number) if annotation is float else number
    if annotation is str or annotation is Any:
        return value
    raise TypeError(f"the fake cannot validate {param} typed {annotation!r}")


def _union(value: Any, arms: tuple[Any, ...], param: str, owner: type) -> Any:
    errors: list[ParamError] = []
    for arm in arms:
        try:
            return _value(value, arm, param, owner)
        except ParamError as exc:
            errors.append(exc)
    # The arm whose shape fits (a container for an object, a scalar for a string) says what is wrong.
    for arm, error in zip(arms, errors, strict=True):
        resolved = _resolve(arm, owner)
        container = get_origin(resolved) in (list, dict, typing.List, typing.Dict) or (  # noqa: UP006
            isinstance(resolved, type) and is_typeddict(resolved))
        if container == isinstance(value, dict):
            raise error
    raise errors[0]


def _list(value: Any, item: Any, param: str, owner: type) -> list[Any]:
    if not isinstance(value, dict) or not all(_INTEGER.match(k) for k in value):
        raise ParamError(f"Invalid array: {param}", param)
    ordered = sorted(value.items(), key=lambda kv: int(kv[0]))
    return [_value(v, item, join_param(param, k), owner) for k, v in ordered]


def _map(value: Any, param: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ParamError(f"Invalid object: {param}", param)
    for key, item in value.items():
        if not isinstance(item, str):
            name = join_param(param, key)
            raise ParamError(f"Invalid string: {name} must be a string, not an object", name)
    return dict(value)
