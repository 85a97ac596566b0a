"""The library of law Q&A items behind the daily legal-policy update.

One item a day, in the file's order, never the same item twice: the post's source key
(`law:<id>`) is what remembers an item was used. An item past its `verify_by` date is
held back until a person checks the law again; an item without a source is refused.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot import yamlfile
from bot.errors import ConfigError

LIBRARY_FILE = Path(__file__).resolve().parent / "data" / "law_library.yaml"
MAX_POINTS = 4


class LawItem(BaseModel):
    """One checked provision, explained for workers."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,60}$")
    citation: str = Field(min_length=1)
    law: str = Field(min_length=1)
    title: str = Field(min_length=1, max_length=200)
    summary: str = Field(min_length=1)
    source_url: str = Field(pattern=r"^https?://\S+$")
    as_of: date
    verify_by: date

    @field_validator("citation", "law", "title", "summary")
    @classmethod
    def _nfc(cls, value: str) -> str:
        return unicodedata.normalize("NFC", " ".join(value.split()))

    @property
    def source_key(self) -> str:
        return f"law:{self.id}"

    @property
    def full_citation(self) -> str:
        """ "Điều 107 Bộ luật Lao động 2019 (45/2019/QH14)"."""
        return f"{self.citation} {self.law}"

    @property
    def points(self) -> tuple[str, ...]:
        """The summary's sentences, at most four: the points of its infographic."""
        sentences = [s.strip() for s in self.summary.replace("\n", " ").split(". ") if s.strip()]
        points = [s if s.endswith(".") else s + "." for s in sentences]
        if len(points) > MAX_POINTS:
            points[MAX_POINTS - 1 :] = [" ".join(points[MAX_POINTS - 1 :])]
        return tuple(points)


@dataclass(frozen=True)
class Library:
    items: tuple[LawItem, ...]
    problems: tuple[str, ...]  # entries refused, in Vietnamese

    def next_item(self, used: set[str], today: date) -> tuple[LawItem | None, list[str]]:
        """The first unused item still trusted today, and a warning per item held back."""
        held = []
        for item in self.items:
            if item.source_key in used:
                continue
            if item.verify_by < today:
                held.append(
                    f"Mục «{item.id}» ({item.full_citation}) quá hạn kiểm tra "
                    f"{item.verify_by:%d/%m/%Y}: giữ lại, chờ cán bộ đối chiếu văn bản mới."
                )
                continue
            return item, held
        return None, held


def load_library(path: Path = LIBRARY_FILE) -> Library:
    """The library in `path`; a bad entry is skipped and named, the others load."""
    try:
        data = yamlfile.load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Không đọc được thư viện pháp luật «{path.name}».") from exc
    except yaml.YAMLError as exc:
        problem = yamlfile.problem(exc) or "sai cú pháp YAML"
        raise ConfigError(f"Thư viện pháp luật «{path.name}» {problem}.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise ConfigError(f"Thư viện pháp luật «{path.name}» cần mục «items» là một danh sách.")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(
            f"Thư viện pháp luật «{path.name}»: mục «defaults» phải là một nhóm trường "
            "«tên_trường: giá trị»."
        )
    items: list[LawItem] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, entry in enumerate(data["items"], start=1):
        fields: dict[str, Any] = {**defaults, **entry} if isinstance(entry, dict) else {}
        name = str(fields.get("id") or f"thứ {number}")
        try:
            item = LawItem.model_validate(fields)
        except ValidationError as exc:
            problems.append(f"Bỏ qua mục «{name}» của thư viện pháp luật: {_reason(exc)}.")
            continue
        if item.id in seen:
            problems.append(f"Bỏ qua mục «{name}»: mã này đã dùng cho một mục trước.")
            continue
        seen.add(item.id)
        items.append(item)
    return Library(tuple(items), tuple(problems))


LABELS = {
    "id": "mã",
    "citation": "căn cứ",
    "law": "tên luật",
    "title": "tiêu đề",
    "summary": "nội dung giải đáp",
    "source_url": "liên kết nguồn",
    "as_of": "ngày cập nhật",
    "verify_by": "hạn kiểm tra lại",
}


def _reason(error: ValidationError) -> str:
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    label = LABELS.get(field, field or "mục")
    if first["type"] == "missing":
        return f"thiếu {label}"
    return f"{label} không hợp lệ"
