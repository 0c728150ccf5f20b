"""The broken DICOM files of pydicom's and pydicom-data's test files, each with why it is broken.

Only files that are genuinely unusable as images are listed: pydicom itself
cannot read them, or cannot decode their pixel data with any installed
plugin. Files that pydicom's tests use for oddities it reads fine (for
example ``bad_sequence.dcm``, ``no_meta_group_length.dcm``,
``MR_small_padded.dcm``) are left out: a tool must convert those.
"""

from __future__ import annotations

from pathlib import Path

from pydicom.data import get_testdata_file

__all__ = ["BROKEN_DICOM", "broken_dicom_files"]

#: File name -> why it cannot be used as an image.
BROKEN_DICOM = {
    # pydicom test files
    "no_meta.dcm": "no 128-byte preamble, 'DICM' marker or file meta information",
    "ExplVR_BigEndNoMeta.dcm": "no preamble or file meta information (explicit VR big endian)",
    "ExplVR_LitEndNoMeta.dcm": "no preamble or file meta information (explicit VR little endian)",
    "meta_missing_tsyntax.dcm": "file meta information without a Transfer Syntax UID",
    "MR_truncated.dcm": "pixel data cut short (8,130 of 8,192 bytes)",
    "rtplan_truncated.dcm": "file cut off inside a data element",
    "badVR.dcm": "an integer string (IS) element holding '1A': pixel decoding fails on it",
    "nested_priv_SQ.dcm": "pixel data without Bits Allocated (0028,0100)",
    "JPEG-lossy.dcm": "12-bit JPEG stream with a misplaced marker segment: no installed "
    "decoder reads it",
    "JPEG2000-embedded-sequence-delimiter.dcm": "JPEG 2000 fragment with a sequence "
    "delimiter inside: the codestream header cannot be read",
    # pydicom-data
    "emri_small_jpeg_2k_lossless_too_short.dcm": "encapsulated pixel data cut short: the file "
    "ends before the sequence delimiter",
    "OT-PAL-8-face.dcm": "no preamble or file meta information",
}


def broken_dicom_files(folder: Path) -> dict[Path, str]:
    """Write every broken file into ``folder``: the list above plus three made here.

    The files made here are an empty ``.dcm``, ``CT_small.dcm`` cut in half
    and a ``.dcm`` of text.

    Returns:
        Path -> reason, for every file written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, reason in BROKEN_DICOM.items():
        path = folder / name
        path.write_bytes(Path(get_testdata_file(name)).read_bytes())
        files[path] = reason
    ct = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    made = {
        "empty.dcm": (b"", "empty file"),
        "CT_small_half.dcm": (ct[: len(ct) // 2], "CT_small.dcm cut in half"),
        "text.dcm": (b"not a DICOM file\n" * 20, "text with a .dcm suffix"),
    }
    for name, (data, reason) in made.items():
        (folder / name).write_bytes(data)
        files[folder / name] = reason
    return files
