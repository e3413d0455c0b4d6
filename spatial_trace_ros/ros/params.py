"""ROS parameters declared from one typed config per node, validated all at once.

A node's config is a pydantic model (plain Python, owned by the core it configures). Each field
becomes a ROS parameter with a descriptor: the field's description (unit in brackets), numeric
range from ``ge``/``le``, allowed values of a ``Literal``, and ``read_only`` from
``json_schema_extra={"read_only": True}``. Changes at run time (``ros2 param set``) are validated
against the whole model; an invalid value is refused with the reason and the old value kept.
"""

from __future__ import annotations

import array
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.exceptions import InvalidParameterTypeException, ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter

from spatial_trace_ros.errors import ConfigError

_SCALAR_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}
_ARRAY_TYPES = {
    bool: ParameterType.PARAMETER_BOOL_ARRAY,
    int: ParameterType.PARAMETER_INTEGER_ARRAY,
    float: ParameterType.PARAMETER_DOUBLE_ARRAY,
    str: ParameterType.PARAMETER_STRING_ARRAY,
}
_TYPE_ONLY = {
    ParameterType.PARAMETER_BOOL_ARRAY: Parameter.Type.BOOL_ARRAY,
    ParameterType.PARAMETER_INTEGER_ARRAY: Parameter.Type.INTEGER_ARRAY,
    ParameterType.PARAMETER_DOUBLE_ARRAY: Parameter.Type.DOUBLE_ARRAY,
    ParameterType.PARAMETER_STRING_ARRAY: Parameter.Type.STRING_ARRAY,
}


def _literal_choices(annotation: Any) -> tuple | None:
    return get_args(annotation) if get_origin(annotation) is Literal else None


def ros_parameter_type(annotation: Any) -> int:
    """The ROS parameter type of a config field's annotation."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        raise TypeError(f"optional parameters are not supported by ROS: {annotation}")
    choices = _literal_choices(annotation)
    if choices is not None:
        return _SCALAR_TYPES[type(choices[0])]
    if annotation in _SCALAR_TYPES:
        return _SCALAR_TYPES[annotation]
    if get_origin(annotation) in (list, tuple):
        (item,) = set(get_args(annotation)) - {Ellipsis}
        return _ARRAY_TYPES[item]
    raise TypeError(f"no ROS parameter type for {annotation}")


def describe_field(name: str, field: FieldInfo) -> ParameterDescriptor:
    ptype = ros_parameter_type(field.annotation)
    text = field.description or name
    choices = _literal_choices(field.annotation)
    if choices:
        text += f" (one of: {', '.join(map(str, choices))})"
    desc = ParameterDescriptor(name=name, type=ptype, description=text)
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    desc.read_only = bool(extra.get("read_only", False))
    lo = hi = None
    for m in field.metadata:
        if isinstance(m, annotated_types.Ge | annotated_types.Gt):
            lo = m.ge if isinstance(m, annotated_types.Ge) else m.gt
        if isinstance(m, annotated_types.Le | annotated_types.Lt):
            hi = m.le if isinstance(m, annotated_types.Le) else m.lt
    if lo is not None and hi is not None:
        if ptype == ParameterType.PARAMETER_DOUBLE:
            desc.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
        elif ptype == ParameterType.PARAMETER_INTEGER:
            desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
    return desc


def _plain(value: Any) -> Any:
    if isinstance(value, array.array | tuple):
        return list(value)
    return value


def format_validation_error(err: ValidationError, values: dict[str, Any]) -> str:
    """One line per problem: the parameter, the value given and what is wrong."""
    lines = []
    for e in err.errors():
        name = ".".join(str(p) for p in e["loc"]) or "(config)"
        shown = f" = {values[name]!r}" if name in values else ""
        lines.append(f"{name}{shown}: {e['msg']}")
    return "; ".join(lines)


def validate_config(model_cls: type[BaseModel], values: dict[str, Any], source: str) -> BaseModel:
    try:
        return model_cls.model_validate(values)
    except ValidationError as err:
        raise ConfigError(f"invalid parameters for {source}: {format_validation_error(err, values)}") from None


Veto = Callable[[dict[str, Any]], str | None]


class ParameterBinding:
    """Declares a node's parameters from its config model and keeps a validated copy in sync.

    ``veto(updates)`` may refuse a valid change for a run-time reason (e.g. "robot is moving");
    ``on_change(config)`` applies an accepted one.
    """

    def __init__(
        self,
        node: Node,
        model_cls: type[BaseModel],
        veto: Veto | None = None,
        on_change: Callable[[BaseModel], None] | None = None,
    ) -> None:
        self._node = node
        self._model_cls = model_cls
        self._veto = veto
        self._on_change = on_change
        values: dict[str, Any] = {}
        for name, field in model_cls.model_fields.items():
            desc = describe_field(name, field)
            default = field.get_default(call_default_factory=True)
            default = _plain(default)
            if isinstance(default, list) and not default:
                default = _TYPE_ONLY[desc.type]
            try:
                param = node.declare_parameter(name, default, desc)
            except (InvalidParameterTypeException, ParameterException) as err:
                raise ConfigError(f"parameter {name} of {node.get_name()}: {err}") from None
            values[name] = _plain(param.value) if param.value is not None else []
        self._config = validate_config(model_cls, values, f"node {node.get_name()}")
        node.add_on_set_parameters_callback(self._on_set)

    @property
    def config(self) -> Any:
        return self._config

    def _on_set(self, params: list[Parameter]) -> SetParametersResult:
        fields = self._model_cls.model_fields
        updates = {p.name: _plain(p.value) for p in params if p.name in fields}
        if not updates:
            return SetParametersResult(successful=True)
        merged = {**self._config.model_dump(), **updates}
        try:
            candidate = self._model_cls.model_validate(merged)
        except ValidationError as err:
            reason = format_validation_error(err, merged)
            self._node.get_logger().warning(f"parameter change refused: {reason}")
            return SetParametersResult(successful=False, reason=reason)
        if self._veto is not None:
            reason = self._veto(updates)
            if reason:
                self._node.get_logger().warning(f"parameter change refused: {reason}")
                return SetParametersResult(successful=False, reason=reason)
        self._config = candidate
        if self._on_change is not None:
            self._on_change(candidate)
        return SetParametersResult(successful=True)
