"""Finding, loading and declaring libwxpay's C API (``include/wxpay.h``).

The library is looked for, in this order:

1. the file named by the ``WXPAY_LIB`` environment variable (only there:
   when it is set and the file is missing, loading fails);
2. next to the package: inside ``wxpay_ctypes/``, then in its parent folder;
3. in the cargo target directory of the repository this package sits in
   (``$CARGO_TARGET_DIR`` if set, then ``target/`` at the repository root):
   ``release/`` first, then ``debug/``.

The library is loaded on first use, once per process.
"""

import ctypes
import os
import sys
import threading
from pathlib import Path
from typing import List, Optional

from .errors import InputTooLongError, InvalidArgumentError, InvalidUtf8Error, MAX_INPUT_BYTES, error_from

if sys.platform == "darwin":
    LIBRARY_NAME = "libwxpay.dylib"
elif sys.platform == "win32":
    LIBRARY_NAME = "wxpay.dll"
else:
    LIBRARY_NAME = "libwxpay.so"

_lock = threading.Lock()
_lib = None  # type: Optional[ctypes.CDLL]


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


def _declare(lib: ctypes.CDLL) -> None:
    c_char_p, c_void_p, c_int32 = ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int32
    c_int64, c_uint64 = ctypes.c_int64, ctypes.c_uint64
    out = ctypes.POINTER(ctypes.c_void_p)
    # Static strings: c_char_p converts them to bytes and never frees them.
    for name in ("wxpay_version",):
        getattr(lib, name).argtypes = []
        getattr(lib, name).restype = c_char_p
    for name in ("wxpay_result_name", "wxpay_result_message"):
        getattr(lib, name).argtypes = [c_int32]
        getattr(lib, name).restype = c_char_p
    # Owned strings come back through out-pointers as c_void_p, so that the
    # pointer itself survives for wxpay_string_free.
    lib.wxpay_client_new.argtypes = [c_char_p, out, out]
    lib.wxpay_client_new.restype = c_int32
    lib.wxpay_client_free.argtypes = [c_void_p]
    lib.wxpay_client_free.restype = None
    lib.wxpay_build_pay_params.argtypes = [c_void_p, c_char_p, out, out]
    lib.wxpay_build_pay_params.restype = c_int32
    lib.wxpay_sign.argtypes = [c_char_p, c_char_p, c_char_p, out, out]
    lib.wxpay_sign.restype = c_int32
    # API v2: (client, const char *json, char **out_json, char **out_error).
    for name in ("wxpay_query_order", "wxpay_refund", "wxpay_query_refunds"):
        getattr(lib, name).argtypes = [c_void_p, c_char_p, out, out]
        getattr(lib, name).restype = c_int32
    lib.wxpay_close_order.argtypes = [c_void_p, c_char_p, out]
    lib.wxpay_close_order.restype = c_int32
    # Notification bodies are bytes with a length (c_char_p passes the bytes
    # object's buffer; NULs inside are fine since the length is given).
    for name in ("wxpay_verify_payment_notification", "wxpay_verify_refund_notification"):
        getattr(lib, name).argtypes = [c_void_p, c_char_p, c_uint64, c_int64, out, out]
        getattr(lib, name).restype = c_int32
    # API v3: (client, const char *headers_json, body, body_len, expected_fee,
    # out_json, out_error); (client, int32_t *out_count, out_error).
    lib.wxpay_verify_signed_notification.argtypes = [
        c_void_p, c_char_p, c_char_p, c_uint64, c_int64, out, out
    ]
    lib.wxpay_verify_signed_notification.restype = c_int32
    lib.wxpay_download_certificates.argtypes = [c_void_p, ctypes.POINTER(c_int32), out]
    lib.wxpay_download_certificates.restype = c_int32
    lib.wxpay_notification_success_reply.argtypes = [c_void_p, out, out]
    lib.wxpay_notification_success_reply.restype = c_int32
    lib.wxpay_notification_failure_reply.argtypes = [c_void_p, c_char_p, out, out]
    lib.wxpay_notification_failure_reply.restype = c_int32
    lib.wxpay_string_free.argtypes = [c_void_p]
    lib.wxpay_string_free.restype = None


def lib() -> ctypes.CDLL:
    """The loaded library (loaded and declared on the first call)."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            tried = candidates()
            for path in tried:
                if path.is_file():
                    loaded = ctypes.CDLL(str(path))
                    _declare(loaded)
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
    would misread (a NUL inside) or cannot be UTF-8 (a lone surrogate)."""
    if not isinstance(value, str):
        raise TypeError("{} must be a str, not {}".format(argument, type(value).__name__))
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidUtf8Error("argument `{}` cannot be encoded as UTF-8".format(argument)) from None
    if b"\0" in data:
        raise InvalidArgumentError("argument `{}` contains a NUL character".format(argument))
    if len(data) > MAX_INPUT_BYTES:
        raise InputTooLongError(
            "argument `{}` is longer than {} bytes".format(argument, MAX_INPUT_BYTES)
        )
    return data


def take_string(pointer: ctypes.c_void_p) -> Optional[str]:
    """Reads and frees a string the library returned (``None`` for NULL)."""
    if not pointer.value:
        return None
    try:
        return ctypes.string_at(pointer.value).decode("utf-8", errors="replace")
    finally:
        lib().wxpay_string_free(pointer)
        pointer.value = None


def call_no_output(function, *args) -> None:
    """Calls a C function whose last argument is ``char **out_error`` (and
    that has no other output); raises the mapped error on failure."""
    error = ctypes.c_void_p()
    try:
        code = function(*args, ctypes.byref(error))
    finally:
        document = take_string(error)
    if code != 0:
        raise error_from(code, document)


def call(function, *args) -> str:
    """Calls a C function whose last two arguments are ``char **out`` and
    ``char **out_error``; returns the output or raises the mapped error."""
    out = ctypes.c_void_p()
    error = ctypes.c_void_p()
    try:
        code = function(*args, ctypes.byref(out), ctypes.byref(error))
    finally:
        document = take_string(error)
    if code != 0:
        take_string(out)  # NULL by contract; freed all the same if not
        raise error_from(code, document)
    text = take_string(out)
    if text is None:
        raise error_from(1902, '{"message": "libwxpay returned success but no output"}')
    return text
