"""The organisation file: the example loads, and each mistake gives a Vietnamese sentence."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from bot.db.models import Channel
from bot.errors import ConfigError
from bot.org import Organisation, load_organisation
from bot.settings import EXAMPLE_ORG_DIR

EXAMPLE = EXAMPLE_ORG_DIR / "organisation.yaml"

MINIMAL = """\
name: Liên đoàn Lao động huyện Gia Lâm
short_name: LĐLĐ huyện Gia Lâm
area: huyện Gia Lâm, Hà Nội
signature: Ban Tuyên giáo
article_cover_url: https://example.org/cover.jpg
"""


def load(tmp_path: Path, text: str) -> Organisation:
    path = tmp_path / "organisation.yaml"
    path.write_text(text, encoding="utf-8")
    return load_organisation(path)


def test_example_file_loads_and_is_marked_as_example() -> None:
    assert EXAMPLE.read_text(encoding="utf-8").startswith("# DỮ LIỆU MẪU")
    org = load_organisation(EXAMPLE)
    assert org.example is True
    assert org.name == "Liên đoàn Lao động huyện Gia Lâm"
    assert "Hà Nội" in org.area
    assert org.slogans[0] == "Công đoàn Việt Nam: Chủ động - Tích cực - Sáng tạo - Trách nhiệm"
    assert [s.split()[0] for s in org.slogans[1:]] == ["Chủ", "Tích", "Sáng", "Trách"]
    assert "CongDoanVietNam" in org.hashtags
    assert org.article_cover_url.startswith("https://")
    assert org.default_channels == Channel.choosable()
    assert org.local_events[0].month == 5
    assert "\n" in org.signature
    assert not org.signature.endswith("\n")


def test_defaults_hashtags_and_nfc(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "Công đoàn Gia Lâm")
    org = load(
        tmp_path,
        MINIMAL
        + f'facebook_page_name: "{decomposed}"\n'
        + 'hashtags: ["#CongDoanVietNam", "CongDoanVietNam", "##ATVSLD"]\n',
    )
    assert org.facebook_page_name == "Công đoàn Gia Lâm"
    assert unicodedata.is_normalized("NFC", org.facebook_page_name)
    assert org.hashtags == ["CongDoanVietNam", "ATVSLD"]
    assert org.example is False
    assert org.default_channels == [
        Channel.FACEBOOK_PAGE,
        Channel.ZALO_BROADCAST,
        Channel.ZALO_GROUP,
        Channel.ZALO_USER,
    ]
    assert org.slogans == [] and org.local_events == [] and org.website is None


def test_channels_subset(tmp_path: Path) -> None:
    org = load(tmp_path, MINIMAL + "default_channels: [zalo_group, facebook_page, zalo_group]\n")
    assert org.default_channels == [Channel.ZALO_GROUP, Channel.FACEBOOK_PAGE]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MINIMAL.replace("name: Liên", "ten: Liên"), "trường «name»: thiếu trường bắt buộc"),
        (MINIMAL.replace("area: huyện Gia Lâm, Hà Nội", "area: 12"), "«area»: phải là một chuỗi"),
        (MINIMAL.replace("signature: Ban Tuyên giáo", "signature: '  '"), "không được để trống"),
        (MINIMAL + "slogans: Chủ động\n", "«slogans»: phải là một danh sách"),
        (MINIMAL + "slogans: [Chủ động, 3]\n", "«slogans», mục thứ 2: phải là một chuỗi"),
        (MINIMAL + "hashtags: ['Công đoàn']\n", "«hashtags», mục thứ 1: hashtag «Công đoàn»"),
        (MINIMAL + "website: example.org\n", "«website»: địa chỉ «example.org» phải là"),
        (
            MINIMAL.replace("https://example.org/cover.jpg", "http://example.org/a.jpg"),
            "«article_cover_url»: địa chỉ «http://example.org/a.jpg» phải là một URL bắt đầu "
            "bằng https://",
        ),
        (MINIMAL + "example: có lẽ\n", "«example»: phải là true hoặc false"),
        (
            MINIMAL + "default_channels: [facebook_page, telegram]\n",
            "«default_channels», mục thứ 2: kênh «telegram» không hợp lệ; các kênh hợp lệ: "
            "facebook_page, zalo_broadcast, zalo_group, zalo_user",
        ),
        (MINIMAL + "default_channels: []\n", "«default_channels»: danh sách phải có ít nhất"),
        (MINIMAL + "fanpage: x\n", "«fanpage»: trường này không được hỗ trợ"),
        (
            MINIMAL + "local_events:\n  - {name: Hội Gióng, day: 31, month: 4}\n",
            "«local_events», mục thứ 1: ngày 31/4 không có trong năm",
        ),
        (
            MINIMAL + "local_events:\n  - {name: Hội Gióng, day: 9, month: 13}\n",
            "«local_events», mục thứ 1, «month» (tháng): phải nhỏ hơn hoặc bằng 12",
        ),
        (MINIMAL + "local_events: [Hội Gióng]\n", "phải là một nhóm trường"),
        (MINIMAL + "default_times: {law: '2147483648:00'}\n", "phải viết dạng 07:30"),
    ],
)
def test_bad_values_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert message in caught.value.message
    assert caught.value.message.startswith("Tệp cấu hình «organisation.yaml», trường ")
    assert caught.value.message.endswith(".")


def test_all_errors_are_counted(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\(và 3 lỗi khác\)\.$"):
        load(tmp_path, "name: A\n")


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sai cú pháp YAML ở dòng 3, cột 15"):
        load(tmp_path, "name: A\nshort_name: B\nsignature: Ban: Tuyên giáo\n")


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="khai báo trường «name» hai lần ở dòng 6"):
        load(tmp_path, MINIMAL + "name: Khác\n")


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "chỉ là một dòng chữ\n"])
def test_not_a_mapping(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="phải gồm các dòng dạng «tên_trường: giá trị»"):
        load(tmp_path, text)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Không tìm thấy tệp cấu hình tổ chức"):
        load_organisation(tmp_path / "khong_co.yaml")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "organisation.yaml"
    path.write_bytes(b"name: Li\xean \xf0o\xe0n\n")
    with pytest.raises(ConfigError, match="cần mã UTF-8"):
        load_organisation(path)
