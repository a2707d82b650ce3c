"""Strict reading of the YAML files users write (the configuration and baseline profiles).

One set of rules for both: repeated keys are errors, every problem is collected with its key path
(``clusters[1].subnets[0]``), and one ``DocumentError`` reports them all, one ``<file>: <key>: <problem>``
line each.

A file is read only if it is a regular file of at most 5 MB, and a document only if it nests no deeper
than 64 levels and, with its YAML aliases written out, holds at most 100,000 values: a FIFO, a device,
a deep nesting or an alias bomb (billion laughs) is reported like any other problem with the file,
never a hang, a ``MemoryError`` or a ``RecursionError``.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

FILE_KEY = "(file)"
"""The key path of problems that concern the whole file (missing, unreadable, not YAML, empty, no mapping)."""
MAX_BYTES = 5 * 1024 * 1024
"""The largest file read; a configuration for hundreds of clusters is a few hundred kilobytes."""
MAX_DEPTH = 64
"""The deepest nesting of lists and mappings read; the configuration itself needs six levels."""
MAX_VALUES = 100_000
"""The most values (scalars, lists, mappings) a document may hold once its aliases are written out."""
T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a document: where (a key path like ``clusters[1].subnets[0]``) and what."""

    key: str
    problem: str


class DocumentError(ValueError):
    """Everything wrong with one YAML file; ``str()`` has one ``<file>: <key>: <problem>`` line per problem.

    ``key`` and ``problem`` are those of the first problem; ``problems`` holds them all.
    """

    def __init__(self, file: Path, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("a DocumentError needs at least one problem")
        self.file = file
        self.problems = tuple(problems)
        self.key = self.problems[0].key
        self.problem = self.problems[0].problem
        super().__init__("\n".join(f"{file}: {p.key}: {p.problem}" for p in self.problems))


class _Refused(Exception):
    """The document is too large or too deep to be read safely; the text says which."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects repeated keys, which plain YAML loading silently lets the last win,
    and nesting deeper than ``MAX_DEPTH``: PyYAML composes nested nodes recursively, so a few thousand
    opening brackets would otherwise end in a ``RecursionError``."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                where = f"line {mark.line + 1}, column {mark.column + 1}"
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels ({where})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)
        if isinstance(key, str | int | float | bool) or key is None:
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def read_document(path: Path, error: type[DocumentError]) -> dict[Any, Any]:
    """Read a YAML file whose top level must be a mapping; any failure raises ``error`` at key ``(file)``."""

    def fail(problem: str) -> DocumentError:
        return error(path, [Problem(FILE_KEY, problem)])

    try:
        text = _read_text(path)
    except _Refused as exc:
        raise fail(str(exc)) from None
    except FileNotFoundError:
        raise fail("file not found") from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise fail(f"not UTF-8 text (invalid byte on line {line})") from None
    except OSError as exc:
        raise fail(f"cannot read the file: {exc.strerror or exc}") from None
    # A SafeLoader subclass: as safe as yaml.safe_load, but repeated keys are errors and size is bounded.
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expanded_size(node)
        document = loader.construct_document(node) if node is not None else None
    except _Refused as exc:
        raise fail(str(exc)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise fail(f"invalid YAML{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise fail(f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    if document is None:
        raise fail("the file is empty (expected a YAML mapping)")
    if not isinstance(document, dict):
        raise fail(f"expected a YAML mapping at the top level, found {describe(document)}")
    return document


def _read_text(path: Path) -> str:
    """The file's text, if it is a regular file of at most ``MAX_BYTES``; ``_Refused`` otherwise.

    The path is looked at before it is opened: opening a FIFO for reading waits for a writer, and a device
    such as ``/dev/zero`` never ends. ``O_NONBLOCK`` keeps the open from waiting should the path be swapped
    for a FIFO in between, and the open file is looked at again.
    """
    _check_regular(os.stat(path))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as file:
        _check_regular(os.fstat(file.fileno()))
        data = file.read(MAX_BYTES + 1)  # what /proc-like files hold is not what their size says
    if len(data) > MAX_BYTES:
        raise _Refused(f"larger than {MAX_BYTES // (1024 * 1024)} MB; a configuration is far smaller")
    return data.decode("utf-8")


def _check_regular(info: os.stat_result) -> None:
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise _Refused("is a directory, expected a YAML file")
    if not stat.S_ISREG(mode):
        kind = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "not a regular file"
        )
        raise _Refused(f"is {kind}, expected a regular YAML file")
    if info.st_size > MAX_BYTES:
        raise _Refused(
            f"is {info.st_size} bytes, larger than {MAX_BYTES // (1024 * 1024)} MB; a configuration is far smaller"
        )


def _check_expanded_size(root: yaml.Node) -> None:
    """Refuse a node graph that aliases make huge (billion laughs), deep, or cyclic (``&a [*a]``).

    PyYAML does not copy an aliased node: it builds one object and refers to it again, so loading an alias
    bomb is cheap, but anything that walks the result (validation, messages, JSON) walks it written out.
    The walk is iterative and visits each node once, so the check costs as much as the file is long.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) once written out
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        children = _children(node)
        if children_done:
            values = 1 + sum(sizes[id(child)][0] for child in children)
            depth = 1 + max((sizes[id(child)][1] for child in children), default=0)
            if values > MAX_VALUES:
                raise _Refused(
                    f"holds more than {MAX_VALUES} values once its YAML aliases (*name) are written out "
                    "(an alias bomb?); a configuration is far smaller"
                )
            if depth > MAX_DEPTH:
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels once its YAML aliases (*name) are written out")
            sizes[key] = (values, depth)
            on_path.discard(key)
            continue
        if key in sizes:
            continue
        on_path.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in on_path:
                line = child.start_mark.line + 1
                raise _Refused(f"a YAML alias refers to a node that contains it (line {line}): it would never end")
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def describe(value: object) -> str:
    """A short phrase naming the YAML type of ``value``, for messages ("a list", "a number")."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def shown(value: object) -> str:
    """``value`` as a message shows it: strings and numbers as written, anything else by its type."""
    if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        return repr(value)
    return describe(value)


def child_key(parent: str, name: str | int) -> str:
    """The key path of ``name`` (a key or a list index) inside ``parent`` (``""`` for the top level)."""
    if isinstance(name, int):
        return f"{parent}[{name}]"
    return f"{parent}.{name}" if parent else name


class Problems:
    """Collects what is wrong with one document, so that every problem is reported at once.

    The typed readers record a problem and return ``None`` when a value has the wrong shape.
    """

    def __init__(self, file: Path) -> None:
        self.file = file
        self._problems: list[Problem] = []

    def __bool__(self) -> bool:
        return bool(self._problems)

    def add(self, key: str, problem: str) -> None:
        """Record one problem at ``key``."""
        self._problems.append(Problem(key, problem))

    def error(self, error: type[DocumentError]) -> DocumentError:
        """The exception listing every recorded problem."""
        return error(self.file, self._problems)

    def mapping(
        self, value: object, key: str, *, required: Iterable[str] = (), optional: Iterable[str] = ()
    ) -> dict[str, object] | None:
        """``value`` as a mapping with only the allowed keys; missing required keys are problems."""
        if not isinstance(value, dict):
            self.add(key or FILE_KEY, f"expected a mapping, found {describe(value)}")
            return None
        required = tuple(required)
        allowed = (*required, *optional)
        result: dict[str, object] = {}
        for name, item in value.items():
            if not isinstance(name, str):
                self.add(key or FILE_KEY, f"key {name!r} is not a string")
            elif name not in allowed:
                self.add(child_key(key, name), unknown_key(name, allowed))
            else:
                result[name] = item
        for name in required:
            if name not in value:
                self.add(child_key(key, name), "required key is missing")
        return result

    def text(self, value: object, key: str) -> str | None:
        """``value`` as a non-empty string."""
        if not isinstance(value, str):
            self.add(key, f"expected a string, found {describe(value)}")
            return None
        if not value.strip():
            self.add(key, "must not be empty")
            return None
        return value.strip()

    def items(self, value: object, key: str, *, allow_empty: bool = False) -> list[tuple[str, object]] | None:
        """``value`` as a list, each item paired with its key path."""
        if not isinstance(value, list):
            self.add(key, f"expected a list, found {describe(value)}")
            return None
        if not value and not allow_empty:
            self.add(key, "must not be empty")
            return None
        return [(child_key(key, index), item) for index, item in enumerate(value)]

    def texts(self, value: object, key: str, *, allow_empty: bool = False) -> list[tuple[str, str]] | None:
        """``value`` as a list of non-empty strings without duplicates, each paired with its key path."""
        items = self.items(value, key, allow_empty=allow_empty)
        if items is None:
            return None
        result: list[tuple[str, str]] = []
        for item_key, item in items:
            text = self.text(item, item_key)
            if text is not None:
                result.append((item_key, text))
        return self.unique(result, fold=str.lower)

    def unique(
        self,
        entries: Sequence[tuple[str, str]],
        *,
        fold: Callable[[str], str] | None = None,
        what: str = "entry",
    ) -> list[tuple[str, str]]:
        """Drop and report repeated entries (compared after ``fold``), naming where each was first seen."""
        first: dict[str, str] = {}
        result: list[tuple[str, str]] = []
        for key, text in entries:
            folded = fold(text) if fold is not None else text
            if folded in first:
                self.add(key, f"duplicate {what} {text!r} (also {first[folded]})")
            else:
                first[folded] = key
                result.append((key, text))
        return result


def unknown_key(name: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key {name!r}; {hint}(expected one of: {', '.join(allowed)})"
