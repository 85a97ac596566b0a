"""Documents from the command line: `post add --document`, the «Tệp» column, `post preview`."""

from __future__ import annotations

import csv

from tests.documents import write_docx, write_pdf
from tests.e2e.conftest import Cdbot, assert_officer_error, future, ok, typed

STORY = ("post", "add", "--kind", "story", "--title", "Kế hoạch thi đua", "--body", "Gửi các cụm.")


def test_add_with_documents_and_preview_names_the_channels_that_carry_them(
    cdbot_clusters: Cdbot,
) -> None:
    folder = cdbot_clusters.folder
    pdf, docx = write_pdf(folder / "Kế hoạch.pdf"), write_docx(folder / "Mẫu báo cáo.docx")
    when = typed(future(days=30))
    post = cdbot_clusters.json(
        *STORY, "--document", pdf, "--document", docx.name, "--at", when, "--json"
    )
    assert post["media"] == ["Kế hoạch.pdf", "Mẫu báo cáo.docx"]
    preview = cdbot_clusters.json("post", "preview", str(post["id"]), "--json")
    carried = {row["channel"]: row["documents"] for row in preview["channels"]}
    assert carried == {
        "facebook_page": [],
        "zalo_broadcast": [],
        "zalo_group": ["Kế hoạch.pdf", "Mẫu báo cáo.docx"],
        "zalo_user": ["Kế hoạch.pdf", "Mẫu báo cáo.docx"],
    }
    page = next(row for row in preview["channels"] if row["channel"] == "facebook_page")
    assert any("không kèm tệp" in warning for warning in page["warnings"])
    text = ok(cdbot_clusters("post", "preview", str(post["id"]))).stdout
    assert "📎 Kèm tệp: Kế hoạch.pdf, Mẫu báo cáo.docx" in text


def test_a_fake_document_is_one_vietnamese_sentence(cdbot_clusters: Cdbot) -> None:
    fake = cdbot_clusters.folder / "ke-hoach.pdf"
    fake.write_text("không phải PDF", encoding="utf-8")
    message = assert_officer_error(cdbot_clusters(*STORY, "--document", fake))
    assert "«ke-hoach.pdf»" in message and "PDF" in message


def test_the_tep_column_of_a_spreadsheet(cdbot_clusters: Cdbot) -> None:
    folder = cdbot_clusters.folder
    write_pdf(folder / "a.pdf")
    write_docx(folder / "b.docx")
    sheet = folder / "bai.csv"
    with sheet.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("Loại", "Tiêu đề", "Nội dung", "Thời điểm", "Tệp"))
        writer.writerow(("story", "Có tệp", "Nội dung.", typed(future(days=31)), "a.pdf; b.docx"))
    assert "Đã nhập 1 bài" in ok(cdbot_clusters("post", "import", sheet)).stdout
    [post] = cdbot_clusters.json("post", "list", "--json")
    assert post["media"] == ["a.pdf", "b.docx"]


def test_documents_with_only_page_and_article_are_refused(cdbot_clusters: Cdbot) -> None:
    pdf = write_pdf(cdbot_clusters.folder / "a.pdf")
    channels = ("--channels", "facebook_page,zalo_broadcast")
    message = assert_officer_error(cdbot_clusters(*STORY, "--document", pdf, *channels))
    assert "zalo_group" in message
    assert cdbot_clusters.json("post", "list", "--json") == []
