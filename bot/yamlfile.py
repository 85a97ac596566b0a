"""Reading the office's YAML files: PyYAML's safe loader, closed where it lets other errors out.

- An alias (`*name`) is refused: it lets a document refer to itself (a list inside
  itself sends every later walk of the data into endless recursion) or grow
  exponentially, and the office's files have no use for it.
- A value PyYAML recognises but cannot build (`2026-02-30`, `!!int abc`, `!!timestamp`)
  becomes a YAML error with its line, not a bare `ValueError`, `IndexError`…
- A document nested deeper than the parser can follow becomes a YAML error too.

So `load` raises only `yaml.YAMLError`; `problem` words these refusals in Vietnamese.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import yaml


class AliasRefused(yaml.composer.ComposerError):
    """An alias (`*name`) in the document."""


class UnbuildableValue(yaml.constructor.ConstructorError):
    """A scalar PyYAML recognised (a date, a tagged number) but could not build."""


class TooDeep(yaml.YAMLError):
    """Lists or groups nested deeper than the parser can follow."""


class StrictLoader(yaml.SafeLoader):
    """The safe loader, refusing aliases and reporting unbuildable values as YAML errors."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]  # stubs lack it
            raise AliasRefused(None, None, "aliases are not accepted", mark)
        return super().compose_node(parent, index)

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (yaml.YAMLError, RecursionError):
            raise
        except (
            Exception
        ) as exc:  # a tagged scalar's parser fails as it may: ValueError, IndexError…
            raise UnbuildableValue(None, None, str(exc), node.start_mark) from exc


def load(text: str, loader: type[StrictLoader] = StrictLoader) -> Any:
    """The document in `text`; every problem is a `yaml.YAMLError`."""
    try:
        return yaml.load(text, Loader=loader)
    except RecursionError as exc:
        raise TooDeep("nested too deep") from exc


def nfc_tree(value: Any) -> Any:
    """Every string in a loaded document in Unicode NFC (as all stored text is)."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, list):
        return [nfc_tree(item) for item in value]
    if isinstance(value, dict):
        return {key: nfc_tree(item) for key, item in value.items()}
    return value


def where(exc: yaml.YAMLError) -> str:
    """ " ở dòng 3, cột 15" for an error with a position, else ""."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return f" ở dòng {mark.line + 1}, cột {mark.column + 1}" if mark else ""


def problem(exc: yaml.YAMLError) -> str | None:
    """What is wrong, in Vietnamese, for the refusals of this module; None for the others."""
    if isinstance(exc, AliasRefused):
        return f"dùng bí danh YAML (dấu *){where(exc)}; hãy viết thẳng giá trị ra"
    if isinstance(exc, UnbuildableValue):
        return (
            f"có một giá trị không đọc được{where(exc)} (ví dụ một ngày không có thật); "
            "nếu đó là chữ, hãy đặt trong dấu ngoặc kép"
        )
    if isinstance(exc, TooDeep):
        return "lồng quá nhiều tầng danh sách hoặc nhóm trường"
    return None
