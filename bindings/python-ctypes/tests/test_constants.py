"""The result codes copied into wxpay_ctypes are the header's, and the
library names each code as the exception class's kind."""

import re

import wxpay_ctypes
from conftest import REPO_ROOT

HEADER = REPO_ROOT / "include" / "wxpay.h"


def header_codes() -> dict:
    text = HEADER.read_text(encoding="utf-8")
    block = re.search(r"enum WxPayResult\b.*?\{(.*?)\};", text, re.S)
    assert block, "enum WxPayResult not found in include/wxpay.h"
    # Drop the comments, keep `NAME = VALUE,`.
    body = re.sub(r"/\*.*?\*/", "", block.group(1), flags=re.S)
    codes = dict(
        (name, int(value)) for name, value in re.findall(r"(WXPAY_\w+)\s*=\s*(-?\d+)", body)
    )
    assert codes, "no result codes parsed from include/wxpay.h"
    return codes


def test_result_codes_match_the_header():
    python = {code.name: int(code) for code in wxpay_ctypes.ResultCode}
    assert python == header_codes()


def test_module_constants_match_the_header():
    for name, value in header_codes().items():
        assert getattr(wxpay_ctypes, name) == value, name


def test_max_input_bytes_matches_the_header():
    text = HEADER.read_text(encoding="utf-8")
    match = re.search(r"#define WXPAY_MAX_INPUT_BYTES \((\d+) << (\d+)\)", text)
    assert match, "WXPAY_MAX_INPUT_BYTES not found in include/wxpay.h"
    assert wxpay_ctypes.MAX_INPUT_BYTES == int(match.group(1)) << int(match.group(2))


def test_every_failure_code_has_its_exception_and_the_library_agrees_on_names():
    failures = [c for c in wxpay_ctypes.ResultCode if c != wxpay_ctypes.WXPAY_OK]
    assert set(wxpay_ctypes.ERROR_CLASSES) == set(failures)
    for code in failures:
        cls = wxpay_ctypes.ERROR_CLASSES[code]
        assert issubclass(cls, wxpay_ctypes.WxPayError)
        assert cls.code == code
        assert wxpay_ctypes.result_name(code) == cls.kind
        assert wxpay_ctypes.result_message(code)
    assert wxpay_ctypes.result_name(0) == "ok"
    assert wxpay_ctypes.result_name(4242) == "unknown"
