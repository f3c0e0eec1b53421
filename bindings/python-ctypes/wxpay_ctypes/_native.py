"""Finding, loading and declaring libwxpay's C API (``include/wxpay.h``), and
:func:`call`, the one way this package calls it.

The library is looked for, in this order:

1. the file named by the ``WXPAY_LIB`` environment variable (only there:
   when it is set and the file is missing, loading fails);
2. next to the package: inside ``wxpay_ctypes/``, then in its parent folder;
3. in the cargo target directory of the repository this package sits in
   (``$CARGO_TARGET_DIR`` if set, then ``target/`` at the repository root):
   ``release/`` first, then ``debug/``.

The library is loaded on first use, once per process, and every function is
declared then, from :data:`SIGNATURES`.
"""

import ctypes
import os
import sys
import threading
from ctypes import POINTER, c_char_p, c_int32, c_int64, c_uint64, c_void_p, string_at
from pathlib import Path
from typing import Any, List, Optional

from .errors import InvalidArgumentError, InvalidUtf8Error, ResultCode, error_from

if sys.platform == "darwin":
    LIBRARY_NAME = "libwxpay.dylib"
elif sys.platform == "win32":
    LIBRARY_NAME = "wxpay.dll"
else:
    LIBRARY_NAME = "libwxpay.so"

_lock = threading.Lock()
_lib = None  # type: Optional[ctypes.CDLL]
_string_free = None  # type: Any  # wxpay_string_free, once loaded


def candidates() -> List[Path]:
    """Where the library is looked for, in order (see the module docs)."""
    explicit = os.environ.get("WXPAY_LIB")
    if explicit:
        return [Path(explicit)]
    package = Path(__file__).resolve().parent
    found = [package / LIBRARY_NAME, package.parent / LIBRARY_NAME]
    # bindings/python-ctypes/wxpay_ctypes -> the repository root.
    root = package.parents[2]
    targets = []
    cargo_target = os.environ.get("CARGO_TARGET_DIR")
    if cargo_target:
        targets.append(root / cargo_target)  # an absolute path stays absolute
    targets.append(root / "target")
    for target in targets:
        for profile in ("release", "debug"):
            found.append(target / profile / LIBRARY_NAME)
    return found


# An output pointer (char **, WxPayClient **): :func:`call` passes a c_void_p,
# which ctypes passes by reference, so that the pointer itself survives for
# wxpay_string_free.
OUT = POINTER(c_void_p)
# The opaque client handle, passed as the int address of the client.
CLIENT = c_void_p
# Notification bodies are bytes with a length (c_char_p passes the bytes
# object's buffer; NULs inside are fine since the length is given), then the
# expected amount in fen (0: not checked).
_BODY = [c_char_p, c_uint64, c_int64]

#: Every function of the C API: its result type and its argument types. Those
#: returning ``int32_t`` take ``char **out_error`` last (see :func:`call`).
SIGNATURES = {
    # Static strings: c_char_p converts them to bytes and never frees them.
    "wxpay_version": (c_char_p, []),
    "wxpay_result_name": (c_char_p, [c_int32]),
    "wxpay_result_message": (c_char_p, [c_int32]),
    "wxpay_string_free": (None, [c_void_p]),
    "wxpay_client_new": (c_int32, [c_char_p, OUT, OUT]),
    "wxpay_client_free": (None, [CLIENT]),
    "wxpay_sign": (c_int32, [c_char_p, c_char_p, c_char_p, OUT, OUT]),
    # (client, const char *json, char **out_json, char **out_error)
    "wxpay_build_pay_params": (c_int32, [CLIENT, c_char_p, OUT, OUT]),
    "wxpay_query_order": (c_int32, [CLIENT, c_char_p, OUT, OUT]),
    "wxpay_refund": (c_int32, [CLIENT, c_char_p, OUT, OUT]),
    "wxpay_query_refunds": (c_int32, [CLIENT, c_char_p, OUT, OUT]),
    "wxpay_close_order": (c_int32, [CLIENT, c_char_p, OUT]),
    "wxpay_verify_payment_notification": (c_int32, [CLIENT] + _BODY + [OUT, OUT]),
    "wxpay_verify_refund_notification": (c_int32, [CLIENT] + _BODY + [OUT, OUT]),
    # API v3: (client, const char *headers_json, body, body_len, expected_fee, ...).
    "wxpay_verify_signed_notification": (c_int32, [CLIENT, c_char_p] + _BODY + [OUT, OUT]),
    "wxpay_download_certificates": (c_int32, [CLIENT, POINTER(c_int32), OUT]),
    "wxpay_notification_success_reply": (c_int32, [CLIENT, OUT, OUT]),
    "wxpay_notification_failure_reply": (c_int32, [CLIENT, c_char_p, OUT, OUT]),
}


def _declare(lib: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in SIGNATURES.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes


def lib() -> ctypes.CDLL:
    """The loaded library (loaded and declared on the first call)."""
    global _lib, _string_free
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            tried = candidates()
            for path in tried:
                if path.is_file():
                    loaded = ctypes.CDLL(str(path))
                    _declare(loaded)
                    _string_free = loaded.wxpay_string_free
                    _lib = loaded
                    break
            else:
                raise OSError(
                    "libwxpay not found; looked at: {}. Build it with `cargo build --release` "
                    "or point WXPAY_LIB at {}".format(", ".join(str(p) for p in tried), LIBRARY_NAME)
                )
    return _lib


def encode(value: str, argument: str) -> bytes:
    """``value`` as the NUL-terminated UTF-8 the C API reads; refuses what C
    would misread (a NUL inside) or cannot be UTF-8 (a lone surrogate). The
    library checks the length itself (``WXPAY_ERR_INPUT_TOO_LONG``)."""
    if not isinstance(value, str):
        raise TypeError("{} must be a str, not {}".format(argument, type(value).__name__))
    try:
        data = value.encode()
    except UnicodeEncodeError:
        raise InvalidUtf8Error("argument `{}` cannot be encoded as UTF-8".format(argument)) from None
    if b"\0" in data:
        raise InvalidArgumentError("argument `{}` contains a NUL character".format(argument))
    return data


#: :func:`call`'s output kinds: a string the library allocated, or a client.
TEXT, HANDLE = "text", "handle"
_NO_OUTPUT = '{"message": "libwxpay returned success but no output"}'


def _take(pointer: Optional[int]) -> Optional[str]:
    """Reads and frees a string the library returned (``None`` for NULL)."""
    if not pointer:
        return None
    try:
        return string_at(pointer).decode("utf-8", "replace")
    finally:
        _string_free(pointer)


def take_string(pointer: c_void_p) -> Optional[str]:
    """Reads and frees the string the library left in ``pointer`` (``None``
    for NULL), for code that calls the C functions itself."""
    text = _take(pointer.value)
    pointer.value = None
    return text


def call(function: Any, *args: Any, out: Optional[str] = TEXT) -> Any:
    """Calls ``function(*args, [&output,] &out_error)``, a function of the
    loaded library, and raises the error its result code and error document
    make (:func:`~wxpay_ctypes.errors.error_from`) when it fails.

    ``out`` is what the output pointer before ``out_error`` receives:
    :data:`TEXT`, a string, returned decoded (and freed); :data:`HANDLE`, a
    client, returned as its address; ``None`` when there is no such pointer
    (or the caller passes its own in ``args``), and ``None`` is returned.
    """
    error = c_void_p()
    if out is None:
        code = function(*args, error)
        output = None
    else:
        result = c_void_p()
        code = function(*args, result, error)
        output = result.value
    if code:
        if out is TEXT:
            _take(output)  # NULL by contract; freed all the same if not
        raise error_from(code, _take(error.value))
    if out is not TEXT:
        return output
    text = _take(output)
    if text is None:
        raise error_from(ResultCode.WXPAY_ERR_INTERNAL, _NO_OUTPUT)
    return text
