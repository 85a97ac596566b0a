"""Whatever the office writes in its YAML files, the bot answers in Vietnamese, never a traceback.

Three files are read: the organisation (`load_organisation`: an `Organisation` or one
`ConfigError`), the event calendar (`load_events`) and the law library (`load_library`):
each keeps its good entries and names every bad one, and only a file it cannot read at
all is a `ConfigError`. Inputs are arbitrary YAML documents, raw text, and the shipped
files with a few lines mutated.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.errors import ConfigError
from bot.org import Organisation, load_organisation
from bot.settings import EXAMPLE_ORG_DIR
from content.calendar import EVENTS_FILE, load_events, notices_between
from content.library import LIBRARY_FILE, load_library

EXAMPLE_ORG = EXAMPLE_ORG_DIR / "organisation.yaml"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VIETNAMESE = re.compile("[àáảãạăắằẳẵặâấầẩẫậèéẻẽẹêếềểễệìíỉĩịòóỏõọôốồổỗộơớờởỡợùúủũụưứừửữựỳýỷỹỵđ]")

# Things people and editors put in YAML, and things PyYAML treats specially.
FRAGMENTS = st.sampled_from(
    [
        "",
        "~",
        "[]",
        "{}",
        "- x",
        "&a [1, *a]",
        "*a",
        "&a x",
        "<<: *a",
        "!!int abc",
        "!!float x",
        "!!binary '@@'",
        "!!set {a, b}",
        "!!timestamp 2026-99-99",
        "!!python/name:os.system",
        "2026-02-30",
        "2026-13-01 07:00",
        "24:61",
        "99999999999999999999999999",
        "-7",
        "1e400",
        ".nan",
        "true",
        "'",
        '"',
        "{{ 1/0 }}",
        "{% if %}",
        "{{ name.nope }}",
        "\t",
        ": :",
        "? x",
        "🎉",
        "\u2028",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        "ạ" * 300,
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.dates(),
    FRAGMENTS,
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=8) | st.integers(), children, max_size=3)
    ),
    max_leaves=8,
)


def _keys(model: Any) -> list[str]:
    return list(model.model_fields)


ORG_KEYS = _keys(Organisation)
AUTOMATION_KEYS = _keys(Organisation.model_fields["automation"].annotation)
EVENT_KEYS = [
    *("id", "name", "calendar", "day", "month", "offset", "base_year", "prefix"),
    *("category", "priority", "lead_days", "milestone_lead_days", "template", "hashtags", "emoji"),
]
LAW_KEYS = ["id", "citation", "law", "title", "summary", "source_url", "as_of", "verify_by"]


def mutated(text: str) -> st.SearchStrategy[str]:
    """`text` with one to three of its lines deleted, repeated, re-indented or rewritten."""
    lines = text.splitlines()
    index = st.integers(0, len(lines) - 1)
    edit = st.one_of(
        st.tuples(st.just("delete"), index, st.just("")),
        st.tuples(st.just("repeat"), index, st.just("")),
        st.tuples(st.just("indent"), index, st.sampled_from(["", " ", "  ", "\t", "      "])),
        st.tuples(st.just("value"), index, FRAGMENTS | st.text(max_size=12)),
        st.tuples(st.just("insert"), index, FRAGMENTS | st.text(max_size=12)),
    )

    def apply(edits: list[tuple[str, int, str]]) -> str:
        out = list(lines)
        for kind, at, extra in edits:
            at = min(at, len(out) - 1)
            if kind == "delete":
                del out[at]
            elif kind == "repeat":
                out.insert(at, out[at])
            elif kind == "indent":
                out[at] = extra + out[at].lstrip()
            elif kind == "value" and ":" in out[at]:
                out[at] = out[at].split(":", 1)[0] + ": " + extra
            else:
                out.insert(at, extra)
            if not out:
                out = [""]
        return "\n".join(out) + "\n"

    return st.lists(edit, min_size=1, max_size=3).map(apply)


def documents(keys: list[str]) -> st.SearchStrategy[str]:
    """YAML text: raw text, a dump of arbitrary data, or a group of the known keys."""
    known = st.dictionaries(st.sampled_from(keys), VALUES, max_size=len(keys))
    return st.one_of(
        st.text(max_size=200),
        st.lists(FRAGMENTS | st.sampled_from([f"{k}: " for k in keys]), max_size=8).map("\n".join),
        VALUES.map(_dump),
        known.map(_dump),
    )


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True)


def assert_vietnamese(error: ConfigError) -> None:
    assert VIETNAMESE.search(error.message), error.message


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-config")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


def check_organisation(path: Path) -> None:
    try:
        org = load_organisation(path)
    except ConfigError as error:
        assert_vietnamese(error)
    else:
        assert isinstance(org, Organisation)


@FUZZ
@given(text=st.one_of(documents(ORG_KEYS), mutated(EXAMPLE_ORG.read_text(encoding="utf-8"))))
@example(text="name: 2026-02-30\n")  # each of these once escaped as another exception
@example(text="name: &a [x, *a]\n")
@example(text="name: !!timestamp\n")
@example(text="[" * 1000)
def test_organisation_file_loads_or_is_refused_in_vietnamese(folder: Path, text: str) -> None:
    check_organisation(write(folder, "organisation.yaml", text))


ORG_DATA = yaml.safe_load(EXAMPLE_ORG.read_text(encoding="utf-8"))


@FUZZ
@given(
    fields=st.dictionaries(st.sampled_from(ORG_KEYS), VALUES, max_size=3),
    automation=st.dictionaries(st.sampled_from(AUTOMATION_KEYS), VALUES, max_size=3),
)
def test_organisation_fields_with_any_values(
    folder: Path, fields: dict[str, Any], automation: dict[str, Any]
) -> None:
    """A good file with a few fields (and automation settings) given arbitrary values."""
    data = {**ORG_DATA, **fields, "automation": {**ORG_DATA["automation"], **automation}}
    check_organisation(write(folder, "organisation.yaml", _dump(data)))


def check_calendar(path: Path, entries: int | None = None) -> None:
    try:
        events, problems = load_events(path)
    except ConfigError as error:
        assert_vietnamese(error)
        return
    for problem in problems:
        assert VIETNAMESE.search(problem), problem
    if entries is not None:
        assert len(events) + len(problems) == entries  # each entry kept or named
    notices_between(events, date(2026, 1, 1), date(2026, 12, 31))


EVENT = st.dictionaries(st.sampled_from(EVENT_KEYS), VALUES, max_size=len(EVENT_KEYS))
GOOD_EVENT = {"id": "su-kien", "name": "Sự kiện", "calendar": "solar", "day": 1, "month": 5}
GOOD_EVENT |= {"category": "union"}


@FUZZ
@given(text=st.one_of(documents(["events"]), mutated(EVENTS_FILE.read_text(encoding="utf-8"))))
def test_calendar_file_never_raises_anything_else(folder: Path, text: str) -> None:
    check_calendar(write(folder, "events.yaml", text))


@FUZZ
@given(entries=st.lists(EVENT.map(lambda e: {**GOOD_EVENT, **e}) | VALUES, max_size=5))
@example(entries=[{**GOOD_EVENT, "day": 10**30}, {**GOOD_EVENT, "template": "{{ 1/0 }}"}])
def test_every_calendar_entry_is_kept_or_named(folder: Path, entries: list[Any]) -> None:
    check_calendar(write(folder, "events.yaml", _dump({"events": entries})), len(entries))


def check_library(path: Path, entries: int | None = None) -> None:
    try:
        library = load_library(path)
    except ConfigError as error:
        assert_vietnamese(error)
        return
    for problem in library.problems:
        assert VIETNAMESE.search(problem), problem
    if entries is not None:
        assert len(library.items) + len(library.problems) == entries
    library.next_item(set(), date(2026, 8, 1))


LAW = st.dictionaries(st.sampled_from(LAW_KEYS), VALUES, max_size=len(LAW_KEYS))


@FUZZ
@given(text=st.one_of(documents(["defaults", "items"]), mutated(LIBRARY_FILE.read_text("utf-8"))))
def test_law_library_never_raises_anything_else(folder: Path, text: str) -> None:
    check_library(write(folder, "law_library.yaml", text))


@FUZZ
@given(defaults=VALUES, entries=st.lists(LAW | VALUES, max_size=5))
@example(defaults=True, entries=[{}])
def test_every_library_entry_is_kept_or_named(
    folder: Path, defaults: Any, entries: list[Any]
) -> None:
    path = write(folder, "law_library.yaml", _dump({"defaults": defaults, "items": entries}))
    try:
        library = load_library(path)
    except ConfigError as error:  # only for defaults that are not a group of fields
        assert not isinstance(defaults, dict) and defaults, error
        assert_vietnamese(error)
        return
    assert len(library.items) + len(library.problems) == len(entries)


TRAPS = {
    "alias": ("name: &a [x, *a]\n", "bí danh YAML"),
    "impossible date": ("name: 2026-02-30\n", "giá trị không đọc được ở dòng 1"),
    "empty timestamp": ("name: !!timestamp\n", "giá trị không đọc được"),
    "deep nesting": ("[" * 1000, "lồng quá nhiều tầng"),
}


@pytest.mark.parametrize(("text", "expected"), TRAPS.values(), ids=TRAPS.keys())
def test_yaml_traps_are_refused_in_vietnamese(tmp_path: Path, text: str, expected: str) -> None:
    """Each once escaped as RecursionError, ValueError or AttributeError."""
    for load in (
        load_organisation,
        lambda path: load_events(path),
        lambda path: load_library(path),
    ):
        with pytest.raises(ConfigError, match=expected):
            load(write(tmp_path, "tep.yaml", text))
