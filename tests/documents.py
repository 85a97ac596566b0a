"""Small real documents for tests: PDF, Word 97-2003 (.doc) and Word (.docx)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from content.media import OLE2_MAGIC, write_sample_pdf

DOCX_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Override PartName="/word/document.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
DOCX_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    "<w:body><w:p><w:r><w:t>Kế hoạch thi đua</w:t></w:r></w:p></w:body></w:document>"
)


def write_pdf(path: Path, padding: int = 0) -> Path:
    """A one-page PDF, made `padding` bytes bigger with a trailing comment."""
    write_sample_pdf(path, "Ke hoach")
    if padding:
        with path.open("ab") as handle:
            handle.write(b"%" + b"0" * (padding - 2) + b"\n")
    return path


def write_doc(path: Path) -> Path:
    """The OLE2 compound-file header of a .doc, padded to one sector."""
    path.write_bytes(OLE2_MAGIC + bytes(504))
    return path


def write_docx(path: Path, *, body: bool = True) -> Path:
    """A ZIP holding `word/document.xml` (without it, just some ZIP)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", DOCX_TYPES)
        if body:
            archive.writestr("word/document.xml", DOCX_BODY)
        else:
            archive.writestr("xl/workbook.xml", "<workbook/>")
    return path
