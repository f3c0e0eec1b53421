"""Result codes of the C API and the exceptions they become.

The numbers are copied from ``include/wxpay.h`` (``enum WxPayResult``); a test
(``tests/test_constants.py``) parses the header and fails when they differ.
"""

import enum
import json
from typing import Any, Dict, Optional

#: The longest string argument the C API accepts, in bytes (``WXPAY_MAX_INPUT_BYTES``).
MAX_INPUT_BYTES = 1 << 20


class ResultCode(enum.IntEnum):
    """The ``WXPAY_*`` result codes of ``include/wxpay.h``."""

    WXPAY_OK = 0
    WXPAY_ERR_NULL_ARGUMENT = 1001
    WXPAY_ERR_INVALID_UTF8 = 1002
    WXPAY_ERR_INPUT_TOO_LONG = 1003
    WXPAY_ERR_INVALID_JSON = 1101
    WXPAY_ERR_INVALID_CONFIG = 1102
    WXPAY_ERR_INVALID_ORDER = 1103
    WXPAY_ERR_INVALID_ARGUMENT = 1104
    WXPAY_ERR_INVALID_NOTIFICATION = 1105
    WXPAY_ERR_NETWORK = 1201
    WXPAY_ERR_HTTP_STATUS = 1202
    WXPAY_ERR_GATEWAY = 1203
    WXPAY_ERR_MALFORMED_RESPONSE = 1204
    WXPAY_ERR_TOKEN_STORE = 1205
    WXPAY_ERR_REJECTED = 1206
    WXPAY_ERR_PANIC = 1901
    WXPAY_ERR_INTERNAL = 1902


class WxPayError(Exception):
    """A failure reported by libwxpay.

    Attributes mirror the C API's error document: ``code`` (a
    :class:`ResultCode` value), ``kind`` (``"invalid_order"``, ``"gateway"``,
    ...), ``message``, and, when the gateway answered with an errcode,
    ``errcode`` and ``errmsg`` exactly as it sent them (else ``None``);
    ``http_status`` for :class:`HttpStatusError` (and for an API v3
    :class:`RejectedError`, the status the gateway answered with);
    ``gateway_code`` and ``gateway_message`` for :class:`RejectedError`;
    ``retryable`` when the same call may succeed later; and for a failed
    notification verification ``reply``, the body to answer WeChat with (the
    failure reply; else ``None``), and for API v3 ``reply_status``, the HTTP
    status to answer with (500; else ``None``).
    """

    code = None  # type: Optional[int]
    kind = "unknown"

    def __init__(
        self,
        message: str,
        code: Optional[int] = None,
        kind: Optional[str] = None,
        errcode: Optional[int] = None,
        errmsg: Optional[str] = None,
        http_status: Optional[int] = None,
        retryable: bool = False,
        gateway_code: Optional[str] = None,
        gateway_message: Optional[str] = None,
        reply: Optional[str] = None,
        reply_status: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if kind is not None:
            self.kind = kind
        self.errcode = errcode
        self.errmsg = errmsg
        self.http_status = http_status
        self.retryable = retryable
        self.gateway_code = gateway_code
        self.gateway_message = gateway_message
        self.reply = reply
        self.reply_status = reply_status

    def __str__(self) -> str:
        return self.message


class NullArgumentError(WxPayError):
    """A required pointer was NULL (a bug in this wrapper if it ever shows)."""

    code = ResultCode.WXPAY_ERR_NULL_ARGUMENT
    kind = "null_argument"


class InvalidUtf8Error(WxPayError, ValueError):
    """A string argument is not valid UTF-8 (e.g. a lone surrogate)."""

    code = ResultCode.WXPAY_ERR_INVALID_UTF8
    kind = "invalid_utf8"


class InputTooLongError(WxPayError, ValueError):
    """A string argument is longer than :data:`MAX_INPUT_BYTES`."""

    code = ResultCode.WXPAY_ERR_INPUT_TOO_LONG
    kind = "input_too_long"


class InvalidJsonError(WxPayError, ValueError):
    """A JSON argument is not JSON at all."""

    code = ResultCode.WXPAY_ERR_INVALID_JSON
    kind = "invalid_json"


class InvalidConfigError(WxPayError, ValueError):
    """The merchant configuration is unusable; the message names the field."""

    code = ResultCode.WXPAY_ERR_INVALID_CONFIG
    kind = "invalid_config"


class InvalidOrderError(WxPayError, ValueError):
    """The order is unusable (amount, id, body, IP...); the message names the field."""

    code = ResultCode.WXPAY_ERR_INVALID_ORDER
    kind = "invalid_order"


class InvalidArgumentError(WxPayError, ValueError):
    """Another argument is unusable (unknown scheme, empty key, nested params...)."""

    code = ResultCode.WXPAY_ERR_INVALID_ARGUMENT
    kind = "invalid_argument"


class InvalidNotificationError(WxPayError, ValueError):
    """A notification failed verification: do not act on it; answer WeChat
    with ``reply`` (the failure reply), and it will send the notification again."""

    code = ResultCode.WXPAY_ERR_INVALID_NOTIFICATION
    kind = "invalid_notification"


class NetworkError(WxPayError):
    """The gateway could not be reached in time; retrying later may succeed."""

    code = ResultCode.WXPAY_ERR_NETWORK
    kind = "network"


class HttpStatusError(WxPayError):
    """The gateway answered an HTTP status other than 200 (see ``http_status``)."""

    code = ResultCode.WXPAY_ERR_HTTP_STATUS
    kind = "http_status"


class GatewayError(WxPayError):
    """The gateway answered a non-zero ``errcode`` (see ``errcode``, ``errmsg``)."""

    code = ResultCode.WXPAY_ERR_GATEWAY
    kind = "gateway"


class MalformedResponseError(WxPayError):
    """The gateway answered 200 with a body that is not the documented shape."""

    code = ResultCode.WXPAY_ERR_MALFORMED_RESPONSE
    kind = "malformed_response"


class TokenStoreError(WxPayError):
    """The shared access_token store (e.g. Redis) could not be used; retrying may succeed."""

    code = ResultCode.WXPAY_ERR_TOKEN_STORE
    kind = "token_store"


class RejectedError(WxPayError):
    """The API v2 gateway refused the request (see ``gateway_code``, ``gateway_message``)."""

    code = ResultCode.WXPAY_ERR_REJECTED
    kind = "rejected"


class PanicError(WxPayError):
    """A panic inside libwxpay was caught at the C boundary (a bug in libwxpay)."""

    code = ResultCode.WXPAY_ERR_PANIC
    kind = "panic"


class InternalError(WxPayError):
    """libwxpay produced an output it cannot return (not expected to happen)."""

    code = ResultCode.WXPAY_ERR_INTERNAL
    kind = "internal"


#: The exception class of each failure code.
ERROR_CLASSES = {
    cls.code: cls
    for cls in (
        NullArgumentError,
        InvalidUtf8Error,
        InputTooLongError,
        InvalidJsonError,
        InvalidConfigError,
        InvalidOrderError,
        InvalidArgumentError,
        InvalidNotificationError,
        NetworkError,
        HttpStatusError,
        GatewayError,
        MalformedResponseError,
        TokenStoreError,
        RejectedError,
        PanicError,
        InternalError,
    )
}  # type: Dict[int, Any]


def error_from(code: int, document: Optional[str]) -> WxPayError:
    """The exception for a failed call: its ``code`` and the error document
    (JSON text, or ``None`` when the library could not produce one)."""
    details = {}  # type: Dict[str, Any]
    if document:
        try:
            parsed = json.loads(document)
            if isinstance(parsed, dict):
                details = parsed
        except ValueError:
            details = {"message": document}
    cls = ERROR_CLASSES.get(code, WxPayError)
    try:
        code = ResultCode(code)
    except ValueError:
        pass
    return cls(
        str(details.get("message") or "libwxpay call failed with code {}".format(int(code))),
        code=code,
        kind=details.get("kind") if isinstance(details.get("kind"), str) else None,
        errcode=details.get("errcode"),
        errmsg=details.get("errmsg"),
        http_status=details.get("http_status"),
        retryable=bool(details.get("retryable", False)),
        gateway_code=details.get("gateway_code"),
        gateway_message=details.get("gateway_message"),
        reply=details.get("reply") if isinstance(details.get("reply"), str) else None,
        reply_status=details.get("reply_status")
        if isinstance(details.get("reply_status"), int)
        else None,
    )
