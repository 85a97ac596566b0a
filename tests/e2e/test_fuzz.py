"""Whatever text lands in `--title`, `--body` and `--at`, `cdbot post add` never crashes."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import (
    VIETNAMESE,
    Template,
    copy_database,
    future,
    run_cdbot,
    typed,
)

# Anything a terminal can pass as an argument: no NUL, no lone surrogate.
CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
TITLES = st.one_of(
    st.text(CHARS, max_size=60),
    st.sampled_from(["🎉 Họp [@123] cụm", "  ", "Lương [/b] tối thiểu", "-x", "--title"]),
)
BODIES = st.one_of(st.text(CHARS, max_size=300), st.just("ạ" * 2100))
TIMES = st.one_of(
    st.text(CHARS, max_size=25),
    st.sampled_from(
        [
            typed(future(days=10)),
            future(days=11).strftime("%d/%m/%Y %H:%M"),
            "{0.day}/{0.month}/{0.year} {0.hour}:{0.minute:02}".format(future(days=12)),
            "2020-01-01 07:30",
            "31/02/2027 08:00",
            "ngày mai",
            "07:30",
            "",
        ]
    ),
)


# Each example starts `cdbot` (about a second), so no shrinking: a failure is reported as
# found, and the example database replays it first on the next run.
@settings(max_examples=10, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(title=TITLES, body=BODIES, at=TIMES)
def test_random_text_is_stored_or_refused_cleanly(
    seeded: Template, tmp_path_factory: pytest.TempPathFactory, title: str, body: str, at: str
) -> None:
    """Exit 0 stores the title as typed (NFC, trimmed); exit 2 explains and changes nothing."""
    folder = tmp_path_factory.mktemp("fuzz")
    copy_database(seeded.folder, folder)
    args = ("post", "add", "--kind", "story", f"--title={title}", f"--body={body}", f"--at={at}")
    result = run_cdbot(folder, *args, "--json")
    assert result.returncode in (0, 2), (result.returncode, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    if result.returncode == 0:
        post = json.loads(result.stdout)
        assert post["title"] == unicodedata.normalize("NFC", title).strip()
    else:
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert VIETNAMESE.search(result.stderr), result.stderr
        listed = run_cdbot(folder, "post", "list", "--json")
        assert listed.stdout == seeded.posts
