"""Reads the YAML files an operator writes (node.yaml, the enroll answer file) within bounded
memory and time, and refuses what no such file needs with the file, the line and the reason.

PyYAML alone is not enough for a file that may come from anyone who can reach a USB stick or a
provisioning server: a few hundred bytes of nested aliases ("billion laughs") expand into
billions of values once the tree is walked (line numbers, validation, merging); deep nesting
overflows the recursive composer; invalid UTF-8 and a few huge scalars raise errors that are not
YAML errors; and a repeated key silently wins. Here the file is read up to a size limit,
decoded strictly, composed with a depth and node budget, the alias expansion is counted before
anything walks the tree, and duplicate keys are refused with both lines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

MAX_BYTES = 1 << 20  # config and answer files are a few kB; a megabyte is generous
MAX_DEPTH = 32  # the settings nest four levels deep
MAX_VALUES = 20_000  # values, aliases expanded: bounds the memory and time of reading a file


class YamlRefused(Exception):
    """The text is not a YAML file this project reads; `str()` names the file, line and reason."""


@dataclass(frozen=True)
class YamlDocument:
    """The file's data, and the 1-based line of every key path in it (for error messages)."""

    data: Any
    lines: dict[tuple, int]


def _where(mark: yaml.Mark | None) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else "line 1"


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses nesting beyond MAX_DEPTH and more than MAX_VALUES
    nodes (counted as they are made, so memory stays bounded however the text is shaped), and
    whose constructor reports any error of a value (a 5000-digit integer, 2001-13-45) at its
    line instead of raising a bare ValueError."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self._nodes += 1
        if self._nodes > MAX_VALUES:
            mark = self.peek_event().start_mark
            raise yaml.MarkedYAMLError(None, None, f"more than {MAX_VALUES} values", mark)
        if self._depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise yaml.MarkedYAMLError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                                       mark)
        self._depth += 1
        try:
            node = Composer.compose_node(self, parent, index)
            assert node is not None  # an event was peeked, so a node follows
            return node
        finally:
            self._depth -= 1

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            reason = str(exc).split(";")[0]  # not Python's advice on set_int_max_str_digits
            raise ConstructorError(None, None, f"cannot read this value: {reason}",
                                   node.start_mark) from None


def _expanded_size(root: Node) -> None:
    """Refuses a tree whose aliases expand to more than MAX_VALUES values, or that holds
    itself. Each distinct node is sized once (memoised), so this costs the composed size, not
    the expanded one."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            children = _children(node)
            size = 1 + sum(sizes[id(child)] for child in children)
            if size > MAX_VALUES:
                raise yaml.MarkedYAMLError(
                    None, None,
                    f"aliases expand to more than {MAX_VALUES} values", node.start_mark)
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise yaml.MarkedYAMLError(None, None, "an alias refers to a node that holds it",
                                       node.start_mark)
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _refuse_duplicate_keys(root: Node) -> None:
    """A key given twice in one mapping: PyYAML keeps the last silently, which hides a typo'd
    paste. Keys are compared as written (tag and text). Walks each distinct node once."""
    seen_nodes: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, _value in node.value:
                if isinstance(key, ScalarNode):
                    spelled = (key.tag, key.value)
                    line = key.start_mark.line + 1
                    if spelled in first:
                        raise yaml.MarkedYAMLError(
                            None, None, f"duplicate key '{key.value}' (first at line "
                            f"{first[spelled]}, again at line {line})", key.start_mark)
                    first[spelled] = line
        stack.extend(_children(node))


def key_lines(node: Node, prefix: tuple = ()) -> dict[tuple, int]:
    """Maps every key path in the YAML tree to its 1-based line, for error messages. Only for
    trees that passed the checks above (bounded depth and expanded size)."""
    lines: dict[tuple, int] = {prefix: node.start_mark.line + 1}
    if isinstance(node, MappingNode):
        for key, value in node.value:
            path = (*prefix, key.value)
            lines[path] = key.start_mark.line + 1
            lines.update({k: v for k, v in key_lines(value, path).items() if k != path})
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(key_lines(item, (*prefix, index)))
    return lines


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YamlRefused(f"{name}: line {line}, column {column}: not UTF-8 text (byte "
                          f"0x{raw[exc.start]:02x}); save the file as UTF-8") from None


def parse_yaml(text: str | bytes, name: str | Path) -> YamlDocument:
    """The one document in `text`, checked as the module docstring says. `name` only names the
    file in messages. Raises YamlRefused."""
    name = str(name)
    if len(text) > MAX_BYTES:
        raise YamlRefused(f"{name}: larger than {MAX_BYTES} bytes; not a settings file")
    if isinstance(text, bytes):
        text = _decode(text, name)
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(None, {})
        _expanded_size(node)
        _refuse_duplicate_keys(node)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        reason = " ".join(part for part in (exc.context, exc.problem) if part)
        raise YamlRefused(f"{name}: {_where(exc.problem_mark or exc.context_mark)}: invalid "
                          f"YAML: {reason}") from None
    except ReaderError as exc:
        before = text[: exc.position]
        line = before.count("\n") + 1
        column = exc.position - (before.rfind("\n") + 1) + 1
        raise YamlRefused(f"{name}: line {line}, column {column}: invalid YAML: character "
                          f"U+{exc.character:04X} is not allowed in YAML text") from None
    except yaml.YAMLError as exc:
        raise YamlRefused(f"{name}: line 1: invalid YAML: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return YamlDocument(data, key_lines(node))


def read_yaml_file(path: Path) -> YamlDocument:
    """Reads at most MAX_BYTES (+1 to tell a larger file) and parses it. OSError is the
    caller's to word (each file kind says 'cannot read' its own way)."""
    with path.open("rb") as stream:
        raw = stream.read(MAX_BYTES + 1)
    return parse_yaml(raw, path)
