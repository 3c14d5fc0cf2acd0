"""YAML documents for the config files: safe, strict and bounded.

* Safe: PyYAML's safe loader (libyaml's when installed), which builds plain data only.
* Strict: a key given twice in one mapping is an error naming both places (YAML loaders keep the
  last silently, so a second ``accounts:`` would drop the first list). Keys merged in with
  ``<<: *alias`` may be overridden, as YAML intends.
* Bounded: aliases share one object in the loaded document, but everything that walks the
  document (interpolation, validation) expands them, so "billion laughs" (aliases of lists of
  aliases) would expand to billions of values. The document's size once expanded and its depth
  are measured first, counting each shared node once (quick, however large the expansion), and
  a document beyond :data:`MAX_VALUES` values or :data:`MAX_DEPTH` levels, or one that contains
  itself, is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

#: The most values (scalars, list items and mapping entries) a document may hold once its
#: aliases are expanded: about fifty times a config of 10,000 accounts.
MAX_VALUES = 1_000_000
#: The deepest nesting a document may have (a config needs about ten levels).
MAX_DEPTH = 100

_MERGE_TAG = "tag:yaml.org,2002:merge"
# libyaml's loader when PyYAML has it (ten times faster on configs of thousands of accounts).
if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DocumentError(Exception):
    """A document that cannot be used at all; ``errors`` says why, with the place."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def _place(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


class _StrictLoader(_SafeLoader):
    """The safe loader, noting every key given twice in one mapping."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            try:
                where = first.setdefault(key, key_node.start_mark)
            except TypeError:  # an unhashable key: the constructor reports it
                continue
            if where is not key_node.start_mark:
                self.duplicates.append(
                    f'{_place(key_node.start_mark)}: duplicate key "{key}" '
                    f"(first at {_place(where)})"
                )
        return super().construct_mapping(node, deep=deep)


def _syntax_error(exc: yaml.YAMLError) -> DocumentError:
    mark = getattr(exc, "problem_mark", None)
    where = _place(mark) if mark is not None else "yaml"
    problem = getattr(exc, "problem", None) or "syntax error"
    return DocumentError([f"{where}: invalid YAML: {problem}"])


def measure(document: Any) -> tuple[int, int]:
    """(values once aliases are expanded, depth) of a loaded document; ValueError if it
    contains itself. Each shared node is measured once, without recursion."""
    if not isinstance(document, dict | list):
        return 1, 0
    sizes: dict[int, tuple[int, int]] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(document, False)]
    while stack:
        node, done = stack.pop()
        children = list(node.values()) if isinstance(node, dict) else node
        if done:
            size, depth = len(children), 0
            for child in children:
                child_size, child_depth = sizes.get(id(child), (0, 0))
                size += child_size
                depth = max(depth, child_depth)
            sizes[id(node)] = (size, depth + 1)
            on_path.discard(id(node))
            continue
        if id(node) in sizes:  # shared, and measured already
            continue
        if id(node) in on_path:
            raise ValueError("the document contains itself (an alias of a node inside it)")
        on_path.add(id(node))
        stack.append((node, True))
        for child in children:
            if isinstance(child, dict | list) and id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(document)]


def load_mapping(text: str, what: str) -> tuple[dict[Any, Any], list[str]]:
    """The YAML mapping in ``text`` (an empty document is an empty one) and the problems that
    do not stop reading it (keys given twice: the last one is kept meanwhile). Raise
    :class:`DocumentError` for the others, and for a document that is no mapping (saying
    ``what`` it should be)."""
    loader = _StrictLoader(text)
    try:
        document = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise _syntax_error(exc) from None
    finally:
        loader.dispose()
    try:
        values, depth = measure(document)
    except ValueError as exc:
        raise DocumentError([f"(top level): {exc}"]) from None
    if values > MAX_VALUES:
        raise DocumentError(
            [
                f"(top level): too large: more than {MAX_VALUES:,} values once its aliases are "
                "expanded (aliases of lists of aliases multiply)"
            ]
        )
    if depth > MAX_DEPTH:
        raise DocumentError([f"(top level): nested deeper than {MAX_DEPTH} levels"])
    if document is None:
        return {}, loader.duplicates
    if not isinstance(document, dict):
        raise DocumentError([*loader.duplicates, f"(top level): {what} must be a mapping"])
    return document, loader.duplicates
