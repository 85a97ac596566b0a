"""Documents a post carries: PDF, DOC, DOCX up to 5 MB, recognised by their bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from content.kinds import MAX_DOCUMENTS, PostDraft, explain
from content.media import ZALO_DOCUMENT_MAX, is_document, sniff_document
from tests.documents import write_doc, write_docx, write_pdf

WHEN = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)


def make(**overrides: Any) -> PostDraft:
    values: dict[str, Any] = {"kind": "story", "title": "T", "body": "B", "scheduled_at": WHEN}
    return PostDraft.model_validate(values | overrides)


def refusal(**overrides: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        make(**overrides)
    return explain(caught.value)


def test_pdf_doc_and_docx_are_stored_after_the_images(tmp_path: Path) -> None:
    files = (
        write_pdf(tmp_path / "Kế hoạch.pdf"),
        write_doc(tmp_path / "cong-van.doc"),
        write_docx(tmp_path / "mau-bao-cao.DOCX"),
    )
    draft = make(documents=files)
    assert draft.documents == tuple(f.resolve() for f in files)
    assert draft.media == [str(f.resolve()) for f in files]
    assert all(is_document(Path(m)) for m in draft.media)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("gia.pdf", b"Hello, not a PDF", "không phải tệp PDF thật"),
        ("gia.doc", b"%PDF-1.4 a PDF named .doc", "không phải tệp Word (.doc) thật"),
        ("rong.pdf", b"", "không phải tệp PDF thật"),
        ("ghi-chu.txt", b"%PDF-1.4", "phải là PDF, DOC hoặc DOCX"),
    ],
)
def test_bad_magic_bytes_are_refused(
    tmp_path: Path, name: str, content: bytes, fragment: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    text = refusal(documents=(path,))
    assert fragment in text and name in text
    assert text[0].isupper() and text.endswith(".")


def test_a_zip_without_word_document_xml_is_not_a_docx(tmp_path: Path) -> None:
    spreadsheet = write_docx(tmp_path / "bang-tinh.docx", body=False)
    assert sniff_document(spreadsheet.read_bytes()) is None
    assert "không phải tệp Word (.docx) thật" in refusal(documents=(spreadsheet,))
    broken = tmp_path / "hong.docx"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    assert "không phải tệp Word (.docx) thật" in refusal(documents=(broken,))


def test_five_megabytes_pass_and_one_byte_more_does_not(tmp_path: Path) -> None:
    exact = write_pdf(tmp_path / "vua-du.pdf")
    write_pdf(exact, padding=ZALO_DOCUMENT_MAX - exact.stat().st_size)
    assert exact.stat().st_size == ZALO_DOCUMENT_MAX
    assert make(documents=(exact,)).documents == (exact.resolve(),)
    big = write_pdf(tmp_path / "qua-lon.pdf")
    write_pdf(big, padding=ZALO_DOCUMENT_MAX + 1 - big.stat().st_size)
    text = refusal(documents=(big,))
    assert "«qua-lon.pdf» nặng 5,1 MB" in text and "tới 5 MB" in text


def test_at_most_three_documents(tmp_path: Path) -> None:
    files = tuple(write_pdf(tmp_path / f"tep-{n}.pdf") for n in range(MAX_DOCUMENTS + 1))
    assert len(make(documents=files[:MAX_DOCUMENTS]).documents) == MAX_DOCUMENTS
    assert "Tối đa 3 tệp đính kèm" in refusal(documents=files)


def test_missing_and_same_named_documents_are_refused(tmp_path: Path) -> None:
    assert "Không tìm thấy tệp đính kèm «mat.pdf»" in refusal(documents=(tmp_path / "mat.pdf",))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    twins = (write_pdf(tmp_path / "a" / "Ke-hoach.pdf"), write_pdf(tmp_path / "b" / "ke-hoach.pdf"))
    assert "Hai tệp đính kèm cùng tên «ke-hoach.pdf»" in refusal(documents=twins)


def test_documents_need_a_zalo_group_or_admin_channel(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "ke-hoach.pdf")
    text = refusal(documents=(pdf,), channels=("facebook_page", "zalo_broadcast"))
    assert "zalo_group hoặc zalo_user" in text
    # The Page and the follower article simply go without it.
    draft = make(documents=(pdf,), channels=("facebook_page", "zalo_group"))
    assert draft.documents == (pdf.resolve(),)
