"""Request bodies checked against Microsoft's OpenAPI specs, as NRP checks them.

NRP deserialises a PUT body with Json.NET into its contract types: an unknown member, a value of the wrong
JSON type, a value outside a closed enum or a missing required member fails with 400 ``InvalidRequestFormat``
("Cannot parse the request.") and an ``InvalidJson`` detail that ends with the Json.NET path. Read-only
members a client sends are ignored, so the checked body comes back without them.

Each definition is compiled once, on first use, into a graph of small checker objects; checking a body is
then a walk over that graph with no ``$ref`` resolution. JSON paths are assembled only when a check fails.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, cast

__all__ = ["RequestBodyError", "SpecCatalog", "SpecError"]

_DEFAULT_ROOT: Final = Path(__file__).parent / "specs" / "specification"
# The shared ARM library: reached through `$ref`s only, so its `Resource` or `Sku` never competes by name
# with the resource provider's own definitions.
_LIBRARY_DIR: Final = "common-types"
_INT_BOUNDS: Final = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
# Json.NET writes a member name in brackets when it holds one of these (JsonPosition.BuildPath).
_PATH_SPECIAL: Final = frozenset(".[]()'\"/\\ \t\n\r\f\b\u0085\u2028\u2029")

_SchemaKey = tuple[str, str]  # (absolute spec file, JSON pointer)


class RequestBodyError(Exception):
    """A request body NRP would refuse with 400: ARM error code, message naming the JSON path, target.

    ``kind`` says what failed (``unknown-member``, ``type`` or ``value``) and ``path``, ``member``, ``got``
    and ``expected`` say where and how, so that a resource provider with other error texts can word it its way.
    """

    code: str
    message: str
    target: str | None

    def __init__(
        self,
        *,
        code: str,
        message: str,
        target: str | None,
        detail: str,
        kind: str = "value",
        path: str = "",
        member: str | None = None,
        got: str | None = None,
        expected: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.target = target
        self.detail = detail
        self.kind = kind
        self.path = path
        self.member = member
        self.got = got
        self.expected = expected

    def body(self) -> dict[str, Any]:
        """The error response as NRP writes it: the Json.NET message sits in an ``InvalidJson`` detail."""
        return {
            "error": {
                "code": self.code,
                "message": "Cannot parse the request.",
                "details": [{"code": "InvalidJson", "message": self.detail}],
            }
        }


class SpecError(Exception):
    """The specs cannot answer: an unknown or ambiguous definition name, or a ``$ref`` that won't resolve."""


class SpecCatalog:
    """Resource providers' spec definitions by name, compiled on first use into request-body checkers.

    A name is unique within one provider's folder (``network/``, ``containerservice/``); a name two providers
    both define is found through the spec file that defines it (``spec=``). Build one with
    ``SpecCatalog.load()`` and share it: checks may run on many threads at once.
    """

    def __init__(
        self,
        *,
        documents: Mapping[str, Mapping[str, Any]],
        names: Mapping[str, _SchemaKey],
        root: Path | None = None,
        shared: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self._names = names
        self._shared = shared or {}  # names several providers define: only ``spec=`` finds them
        self._root = root
        self._roots: dict[_SchemaKey, _Checker] = {}
        self._lock = threading.Lock()
        self._compiler = _Compiler(documents)

    @classmethod
    def load(cls, root: Path | None = None) -> SpecCatalog:
        """Read every spec file under ``root`` (default: the vendored specs); a name one provider defines
        twice raises."""
        root = (root or _DEFAULT_ROOT).resolve()
        documents: dict[str, Mapping[str, Any]] = {}
        by_provider: dict[str, dict[str, _SchemaKey]] = {}
        for path in sorted(root.rglob("*.json")):
            file = os.path.normpath(path)
            with path.open(encoding="utf-8") as stream:
                documents[file] = json.load(stream)
            provider = path.relative_to(root).parts[0]
            if provider == _LIBRARY_DIR:
                continue
            names = by_provider.setdefault(provider, {})
            for name in documents[file].get("definitions", {}):
                if name in names:
                    raise SpecError(f"Definition '{name}' is ambiguous: it is in both {names[name][0]} and {file}.")
                names[name] = (file, f"/definitions/{_escape_pointer(name)}")
        unique: dict[str, _SchemaKey] = {}
        shared: dict[str, tuple[str, ...]] = {}
        for names in by_provider.values():
            for name, key in names.items():
                if name in shared:
                    shared[name] += (key[0],)
                elif name in unique:
                    shared[name] = (unique.pop(name)[0], key[0])
                else:
                    unique[name] = key
        if not unique and not shared:
            raise SpecError(f"No spec definitions found under {root}.")
        return cls(documents=documents, names=unique, root=root, shared=shared)

    def check_request(self, definition: str, body: object, *, spec: str | None = None) -> dict[str, Any]:
        """Check a PUT body against ``definition`` (in the file ``spec``, relative to the specs root, when
        given); return a copy without read-only and null members."""
        key = self._key(definition, spec)
        checker = self._roots.get(key) or self._compile_root(definition, key)
        try:
            checked = checker.check(body)
        except _Invalid as invalid:
            raise invalid.request_body_error() from None
        # An object checker (see _compile_root) answers with a dict or raises.
        return cast(dict[str, Any], checked)

    def _key(self, definition: str, spec: str | None) -> _SchemaKey:
        if spec is not None:
            if self._root is None:
                raise SpecError("This catalog was not loaded from a folder: it cannot find spec files.")
            return os.path.normpath(self._root / spec), f"/definitions/{_escape_pointer(definition)}"
        key = self._names.get(definition)
        if key is not None:
            return key
        if definition in self._shared:
            raise SpecError(
                f"Definition '{definition}' is ambiguous: it is in {' and '.join(self._shared[definition])}; "
                "name the spec file."
            )
        raise SpecError(f"No definition named '{definition}' in the specs.")

    def _compile_root(self, definition: str, key: _SchemaKey) -> _Checker:
        try:
            self._compiler.node(key)
        except SpecError:
            raise SpecError(f"No definition named '{definition}' in {key[0]}.") from None
        with self._lock:
            checker = self._roots.get(key) or self._compiler.definition(key)
            if not isinstance(checker, _Object | _Polymorphic):
                raise SpecError(f"Definition '{definition}' does not describe a JSON object.")
            # Published only once the whole graph is compiled: readers never see a half-built checker.
            self._roots[key] = checker
        return checker


# ---------------------------------------------------------------------------------------------------------
# Failures inside a check


class _Invalid(Exception):
    """A check failed; each container adds its path segment while the exception unwinds."""

    def __init__(
        self,
        text: str,
        *,
        member: str | None = None,
        kind: str = "value",
        got: str | None = None,
        expected: str | None = None,
    ) -> None:
        super().__init__(text)
        self.text = text
        self.member = member  # a missing member: Json.NET's path is its object, the target is the member
        self.kind = kind
        self.got = got
        self.expected = expected
        self.segments: list[str | int] = []  # innermost first

    def at(self, segment: str | int) -> _Invalid:
        self.segments.append(segment)
        return self

    def request_body_error(self) -> RequestBodyError:
        segments = self.segments[::-1]
        path = _json_path(segments)
        target = _json_path([*segments, self.member]) if self.member is not None else path
        detail = f"{self.text} Path '{path}'."
        return RequestBodyError(
            code="InvalidRequestFormat",
            message=f"Cannot parse the request. {detail}",
            target=target or None,
            detail=detail,
            kind=self.kind,
            path=path,
            # An unknown member is the last segment of its own path.
            member=str(segments[-1]) if self.kind == "unknown-member" and segments else self.member,
            got=self.got,
            expected=self.expected,
        )


def _json_path(segments: Iterable[str | int]) -> str:
    path = ""
    for segment in segments:
        if isinstance(segment, int):
            path += f"[{segment}]"
        elif _PATH_SPECIAL.intersection(segment):
            escaped = segment.replace("\\", "\\\\").replace("'", "\\'")
            path += f"['{escaped}']"
        else:
            path += f".{segment}" if path else segment
    return path


def _token(value: object) -> str:
    """The Json.NET token name of a JSON value."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    if isinstance(value, str):
        return "String"
    return "StartArray" if isinstance(value, list) else "StartObject"


def _literal(value: object) -> str:
    """A primitive as Json.NET quotes it in "Error converting value ..."."""
    if value is None:
        return "{null}"
    if isinstance(value, bool):
        return str(value)
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _json_type(value: object) -> str:
    """The JSON type of a value, as a JSON Schema names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _unexpected(kind: str, value: object) -> _Invalid:
    return _Invalid(
        f"Error reading {kind}. Unexpected token: {_token(value)}.", kind="type", got=_json_type(value), expected=kind
    )


def _not_an_object(value: object, label: str) -> _Invalid:
    if isinstance(value, list):
        return _Invalid(
            f"Cannot deserialize the current JSON array (e.g. [1,2,3]) into type '{label}' because the type "
            'requires a JSON object (e.g. {"name":"value"}) to deserialize correctly.',
            kind="type",
            got="array",
            expected=label,
        )
    return _Invalid(
        f"Error converting value {_literal(value)} to type '{label}'.",
        kind="type",
        got=_json_type(value),
        expected=label,
    )


# ---------------------------------------------------------------------------------------------------------
# Checkers: each returns a checked copy of a JSON value or raises _Invalid


class _Checker:
    label: str = "Object"

    def check(self, value: object) -> object:
        raise NotImplementedError


class _AnyValue(_Checker):
    """Free-form JSON (no type in the spec): kept as sent."""

    def check(self, value: object) -> object:
        return copy.deepcopy(value)


class _AnyObject(_Checker):
    """``type: object`` without members: any JSON object, kept as sent."""

    def __init__(self, label: str) -> None:
        self.label = label

    def check(self, value: object) -> object:
        if not isinstance(value, dict):
            raise _not_an_object(value, self.label)
        return copy.deepcopy(value)


class _String(_Checker):
    label = "String"

    def check(self, value: object) -> object:
        if isinstance(value, str):
            return value
        raise _unexpected("string", value)


class _Boolean(_Checker):
    label = "Boolean"

    def check(self, value: object) -> object:
        if isinstance(value, bool):
            return value
        raise _unexpected("boolean", value)


class _Integer(_Checker):
    def __init__(self, *, fmt: str | None, minimum: int | None, maximum: int | None) -> None:
        self.label = "Int32" if fmt == "int32" else "Int64"
        self.bounds = _INT_BOUNDS.get(fmt or "", _INT_BOUNDS["int64"])
        self.minimum = minimum
        self.maximum = maximum

    def check(self, value: object) -> object:
        if not isinstance(value, int) or isinstance(value, bool):
            if isinstance(value, float):
                raise _Invalid(
                    f"Input string '{value!r}' is not a valid integer.", kind="type", got="number", expected=self.label
                )
            invalid = _unexpected("integer", value)
            invalid.expected = self.label  # Int32 or Int64
            raise invalid
        if not self.bounds[0] <= value <= self.bounds[1]:
            raise _Invalid(f"JSON integer {value} is too large or small for an {self.label}.")
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise _Invalid(f"Value {value} is out of range: allowed values are {_range(self)}.")
        return value


class _Number(_Checker):
    label = "Double"

    def __init__(self, *, minimum: float | None, maximum: float | None) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def check(self, value: object) -> object:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _unexpected("double", value)
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise _Invalid(f"Value {value!r} is out of range: allowed values are {_range(self)}.")
        return value


def _range(checker: _Integer | _Number) -> str:
    if checker.minimum is not None and checker.maximum is not None:
        return f"{checker.minimum} to {checker.maximum}"
    if checker.minimum is not None:
        return f"at least {checker.minimum}"
    return f"at most {checker.maximum}"


class _Enum(_Checker):
    """NRP reads enum names ignoring case and answers in the declared spelling; open enums take any value."""

    def __init__(self, *, label: str, values: list[object], closed: bool, scalar: _Checker) -> None:
        self.label = label
        self.values = tuple(values)
        self.by_folded = {v.casefold(): v for v in values if isinstance(v, str)}
        self.closed = closed
        self.scalar = scalar

    def check(self, value: object) -> object:
        value = self.scalar.check(value)
        if isinstance(value, str):
            declared = self.by_folded.get(value.casefold())
            if declared is not None:
                return declared
        elif value in self.values:
            return value
        if not self.closed:
            return value
        allowed = ", ".join(f"'{v}'" for v in self.values)
        raise _Invalid(f"Error converting value {_literal(value)} to type '{self.label}'. Allowed values: {allowed}.")


class _Array(_Checker):
    def __init__(self, items: _Checker) -> None:
        self.items = items
        self.label = f"List<{items.label}>"

    def check(self, value: object) -> object:
        if not isinstance(value, list):
            if isinstance(value, dict):
                raise _Invalid(
                    f'Cannot deserialize the current JSON object (e.g. {{"name":"value"}}) into type '
                    f"'{self.label}' because the type requires a JSON array (e.g. [1,2,3]) to deserialize "
                    "correctly.",
                    kind="type",
                    got="object",
                    expected=self.label,
                )
            raise _Invalid(
                f"Error converting value {_literal(value)} to type '{self.label}'.",
                kind="type",
                got=_json_type(value),
                expected=self.label,
            )
        items = self.items
        if items is _STRING:
            # Most of a big rule collection group is lists of addresses and ports: no call per item.
            for index, item in enumerate(value):
                if not isinstance(item, str):
                    raise (_null_item(items) if item is None else _unexpected("string", item)).at(index)
            return value.copy()
        checked: list[object] = []
        for index, item in enumerate(value):
            if item is None:
                raise _null_item(items).at(index)
            try:
                checked.append(items.check(item))
            except _Invalid as invalid:
                invalid.at(index)
                raise
        return checked


def _null_item(items: _Checker) -> _Invalid:
    # Json.NET would keep a null in a list of strings, but NRP has no meaning for it; refuse it here.
    return _Invalid(f"Error converting value {{null}} to type '{items.label}'.")


class _Object(_Checker):
    """A definition's members (its own and its ``allOf`` parents'); unknown members are errors."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.fields: dict[str, _Checker | None] = {}  # None: read-only, dropped unchecked
        self.folded: dict[str, str] = {}  # Json.NET matches member names ignoring case
        self.required: tuple[str, ...] = ()
        self.extra: _Checker | None = None  # additionalProperties

    def check(self, value: object) -> object:
        if not isinstance(value, dict):
            raise _not_an_object(value, self.label)
        fields = self.fields
        checked: dict[str, object] = {}
        for key, item in value.items():
            name = key if key in fields else self.folded.get(key.casefold())
            checker: _Checker | None
            if name is not None:
                checker = fields[name]
            elif self.extra is not None:
                name, checker = key, self.extra
            else:
                raise _Invalid(
                    f"Could not find member '{key}' on object of type '{self.label}'.", kind="unknown-member"
                ).at(key)
            if item is None or checker is None:
                continue
            try:
                checked[name] = checker.check(item)
            except _Invalid as invalid:
                invalid.at(key)
                raise
        for name in self.required:
            if name not in checked:
                raise _Invalid(f"Required property '{name}' not found in JSON.", member=name)
        return checked


class _Polymorphic(_Checker):
    """A ``discriminator`` base: the member named by it picks the subtype that checks the object."""

    def __init__(self, label: str, discriminator: str) -> None:
        self.label = label
        self.discriminator = discriminator
        self.subtypes: dict[str, _Object] = {}  # by folded discriminator value
        self.allowed = ""

    def check(self, value: object) -> object:
        if not isinstance(value, dict):
            raise _not_an_object(value, self.label)
        key, tag = self._tag(value)
        if tag is None:
            raise _Invalid(
                f"Required property '{self.discriminator}' not found in JSON. It selects the type of "
                f"'{self.label}'; allowed values: {self.allowed}.",
                member=self.discriminator,
            )
        if not isinstance(tag, str):
            raise _unexpected("string", tag).at(key)
        subtype = self.subtypes.get(tag.casefold())
        if subtype is None:
            raise _Invalid(
                f"Value {_literal(tag)} of '{self.discriminator}' is not a known type of '{self.label}'. "
                f"Allowed values: {self.allowed}."
            ).at(key)
        return subtype.check(value)

    def _tag(self, value: dict[str, object]) -> tuple[str, object]:
        if self.discriminator in value:
            return self.discriminator, value[self.discriminator]
        folded = self.discriminator.casefold()
        for key, item in value.items():
            if key.casefold() == folded:
                return key, item
        return self.discriminator, None


_ANY_VALUE: Final = _AnyValue()
_STRING: Final = _String()
_BOOLEAN: Final = _Boolean()


# ---------------------------------------------------------------------------------------------------------
# Compiling spec schemas into checkers


class _Compiler:
    """Turns spec schemas into checkers, once per definition; used under the catalog's lock."""

    def __init__(self, documents: Mapping[str, Mapping[str, Any]]) -> None:
        self._documents = documents
        self._subtypes = _subtype_index(documents)
        self._definitions: dict[_SchemaKey, _Checker] = {}
        self._shapes: dict[_SchemaKey, _Object] = {}

    def definition(self, key: _SchemaKey) -> _Checker:
        """The checker for the definition at ``key``; a failure leaves no half-built checker behind."""
        definitions, shapes = dict(self._definitions), dict(self._shapes)
        try:
            return self._definition(key)
        except BaseException:
            self._definitions, self._shapes = definitions, shapes
            raise

    def _definition(self, key: _SchemaKey) -> _Checker:
        known = self._definitions.get(key)
        if known is not None:
            return known
        node = self.node(key)
        checker: _Checker
        if "discriminator" in node:
            checker = self._polymorphic(key, node)
        elif _is_object(node):
            checker = self._shape(key)
        else:
            checker = self._schema(key[0], node, label=_pointer_name(key[1]))
        self._definitions[key] = checker
        return checker

    def _polymorphic(self, key: _SchemaKey, node: Mapping[str, Any]) -> _Polymorphic:
        checker = _Polymorphic(_pointer_name(key[1]), node["discriminator"])
        # Registered before the subtypes compile: their members may hold lists of the base again.
        self._definitions[key] = checker
        candidates = self._descendants(key)
        if "x-ms-discriminator-value" in node:
            candidates.insert(0, key)
        tags: list[str] = []
        for subtype in candidates:
            # Without x-ms-discriminator-value, OpenAPI 2.0 takes the definition's name.
            tag = str(self.node(subtype).get("x-ms-discriminator-value", _pointer_name(subtype[1])))
            checker.subtypes[tag.casefold()] = self._shape(subtype)
            tags.append(tag)
        checker.allowed = ", ".join(f"'{tag}'" for tag in sorted(tags))
        return checker

    def _descendants(self, key: _SchemaKey) -> list[_SchemaKey]:
        found: list[_SchemaKey] = []
        pending = list(self._subtypes.get(key, ()))
        while pending:
            subtype = pending.pop(0)
            if subtype not in found:
                found.append(subtype)
                pending.extend(self._subtypes.get(subtype, ()))
        return found

    def _shape(self, key: _SchemaKey) -> _Object:
        known = self._shapes.get(key)
        if known is not None:
            return known
        shape = _Object(_pointer_name(key[1]))
        # Registered before its members compile: definitions refer to each other in cycles
        # (a subnet names its route table, whose read-only `subnets` lists subnets).
        self._shapes[key] = shape
        self._fill(shape, key[0], self.node(key))
        return shape

    def _fill(self, shape: _Object, file: str, node: Mapping[str, Any]) -> None:
        members: _Members = _Members()
        members.collect(self, file, node, seen=frozenset())
        for name, (member_file, schema) in members.properties.items():
            shape.folded[name.casefold()] = name
            read_only = self._read_only(member_file, schema)
            shape.fields[name] = None if read_only else self._schema(member_file, schema, label=f"{shape.label}.{name}")
        shape.required = tuple(dict.fromkeys(n for n in members.required if shape.fields.get(n) is not None))
        if members.additional is not None:
            extra_file, additional = members.additional
            if isinstance(additional, Mapping) and additional:
                shape.extra = self._schema(extra_file, additional, label=f"{shape.label}[*]")
            elif additional is not False:
                shape.extra = _ANY_VALUE  # `true` or `{}`: any value under any name

    def _read_only(self, file: str, schema: Mapping[str, Any]) -> bool:
        if schema.get("readOnly") is True or schema.get("x-ms-mutability") == ["read"]:
            return True
        # A `$ref` to a definition that is itself read-only (ARM's `systemData`).
        return "$ref" in schema and self.node(_resolve_ref(file, schema["$ref"])).get("readOnly") is True

    def _schema(self, file: str, node: Mapping[str, Any], *, label: str) -> _Checker:
        if "$ref" in node:
            return self._definition(_resolve_ref(file, node["$ref"]))
        kind = node.get("type")
        if "enum" in node:
            x_ms_enum = node.get("x-ms-enum", {})
            return _Enum(
                label=x_ms_enum.get("name") or label,
                values=list(node["enum"]),
                # An enum without x-ms-enum is closed, as AutoRest reads it.
                closed=not x_ms_enum.get("modelAsString", False),
                scalar=self._scalar(kind, node),
            )
        if _is_object(node):
            if not any(k in node for k in ("properties", "allOf", "additionalProperties")):
                return _AnyObject(label)
            shape = _Object(label)
            self._fill(shape, file, node)
            return shape
        if kind == "array":
            items = node.get("items")
            return _Array(self._schema(file, items, label=f"{label}[]") if items else _ANY_VALUE)
        return self._scalar(kind, node)

    def _scalar(self, kind: object, node: Mapping[str, Any]) -> _Checker:
        if kind == "string":
            return _STRING
        if kind == "boolean":
            return _BOOLEAN
        if kind == "integer":
            return _Integer(fmt=node.get("format"), minimum=node.get("minimum"), maximum=node.get("maximum"))
        if kind == "number":
            return _Number(minimum=node.get("minimum"), maximum=node.get("maximum"))
        return _ANY_VALUE

    def node(self, key: _SchemaKey) -> Mapping[str, Any]:
        """The schema at ``key`` (a spec file and a JSON pointer into it)."""
        file, pointer = key
        node: Any = self._documents.get(file)
        if node is None:
            raise SpecError(f"$ref to a spec file that is not loaded: {file}")
        for part in filter(None, pointer.split("/")):
            name = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or name not in node:
                raise SpecError(f"$ref does not resolve: {file}#{pointer}")
            node = node[name]
        if not isinstance(node, Mapping):
            raise SpecError(f"$ref is not a schema: {file}#{pointer}")
        return node


class _Members:
    """The members of an object schema gathered through its ``allOf`` parents; a subtype's own win."""

    def __init__(self) -> None:
        self.properties: dict[str, tuple[str, Mapping[str, Any]]] = {}
        self.required: list[str] = []
        self.additional: tuple[str, object] | None = None

    def collect(self, compiler: _Compiler, file: str, node: Mapping[str, Any], *, seen: frozenset[_SchemaKey]) -> None:
        for parent in node.get("allOf", ()):
            if "$ref" in parent:
                key = _resolve_ref(file, parent["$ref"])
                if key in seen:
                    raise SpecError(f"allOf cycle through {key[0]}#{key[1]}")
                self.collect(compiler, key[0], compiler.node(key), seen=seen | {key})
            else:
                self.collect(compiler, file, parent, seen=seen)
        for name, schema in node.get("properties", {}).items():
            self.properties[name] = (file, schema)
        self.required.extend(node.get("required", ()))
        if "additionalProperties" in node:
            self.additional = (file, node["additionalProperties"])


def _is_object(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "object" or (kind is None and any(k in node for k in ("properties", "allOf")))


def _resolve_ref(file: str, ref: str) -> _SchemaKey:
    target, _, pointer = ref.partition("#")
    return (os.path.normpath(os.path.join(os.path.dirname(file), target)) if target else file), pointer


def _pointer_name(pointer: str) -> str:
    return pointer.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")


def _escape_pointer(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _subtype_index(documents: Mapping[str, Mapping[str, Any]]) -> dict[_SchemaKey, list[_SchemaKey]]:
    """Parent definition -> definitions naming it in ``allOf``: the candidates for polymorphic dispatch."""
    index: dict[_SchemaKey, list[_SchemaKey]] = {}
    for file, document in documents.items():
        for name, definition in document.get("definitions", {}).items():
            for parent in definition.get("allOf", ()):
                if isinstance(parent, Mapping) and isinstance(parent.get("$ref"), str):
                    child = (file, f"/definitions/{_escape_pointer(name)}")
                    index.setdefault(_resolve_ref(file, parent["$ref"]), []).append(child)
    return index
