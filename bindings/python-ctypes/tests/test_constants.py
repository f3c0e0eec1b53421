"""The result codes copied into wxpay_ctypes are the header's, the library
names each code as the exception class's kind, and every function of the
header is declared to ctypes with the header's types."""

import ctypes
import re

import wxpay_ctypes
from conftest import REPO_ROOT
from wxpay_ctypes import _native

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


# The ctypes type of each C type of the header.
CTYPES = {
    "const char *": ctypes.c_char_p,
    "const uint8_t *": ctypes.c_char_p,  # a bytes object's buffer
    "char *": ctypes.c_void_p,  # a string to free: the pointer as it is
    "int32_t": ctypes.c_int32,
    "int64_t": ctypes.c_int64,
    "uint64_t": ctypes.c_uint64,
    "int32_t *": ctypes.POINTER(ctypes.c_int32),
    "const WxPayClient *": ctypes.c_void_p,
    "WxPayClient *": ctypes.c_void_p,
    "char **": _native.OUT,
    "WxPayClient **": _native.OUT,
    "void": None,
}


def test_every_function_of_the_header_is_declared_with_its_types():
    text = HEADER.read_text(encoding="utf-8")
    header = {}
    for result, name, parameters in re.findall(
        r"^(const char \*|int32_t|void) ?(wxpay_\w+)\((.*?)\);", text, re.M
    ):
        types = [] if parameters == "void" else [
            re.sub(r"\w+$", "", parameter).strip() for parameter in parameters.split(",")
        ]
        header[name] = (CTYPES[result.strip()], [CTYPES[t] for t in types])
    assert len(header) >= 18, "the functions of include/wxpay.h were not found"
    assert _native.SIGNATURES == header
    lib = _native.lib()
    for name, (restype, argtypes) in header.items():
        function = getattr(lib, name)
        assert (function.restype, list(function.argtypes)) == (restype, argtypes), name
