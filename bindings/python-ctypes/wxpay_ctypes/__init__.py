"""libwxpay for Python through ctypes: standard library only, Python 3.8+.

    import wxpay_ctypes

    with wxpay_ctypes.Client(config) as client:
        params = client.build_pay_params({
            "out_trade_no": "A1001", "total_yuan": "19.99",
            "body": "支付测试", "client_ip": "196.168.1.1"})

    wxpay_ctypes.sign("legacy-sha1", app_key, {"appid": "wx...", ...})

With an API v2 configuration the client also has ``query_order``,
``close_order``, ``refund``, ``query_refunds``, and for the ``notify_url``
handler ``verify_payment_notification`` / ``verify_refund_notification``
(failures carry ``reply``, the failure body to answer with) and
``notification_success_reply`` / ``notification_failure_reply``.

Failures raise :class:`WxPayError` subclasses carrying ``code``, ``kind``,
``message``, ``errcode`` and ``errmsg`` (and more: see :class:`WxPayError`). :mod:`wxpay_ctypes.legacy` has a
drop-in for the ``getPrePaidResult`` function of the 2014-era article.

The shared library is found through ``WXPAY_LIB``, else next to the package,
else in the repository's ``target/release`` then ``target/debug`` (see
:mod:`wxpay_ctypes._native`).
"""

from .client import Client, result_message, result_name, sign, version
from .errors import (
    ERROR_CLASSES,
    MAX_INPUT_BYTES,
    GatewayError,
    HttpStatusError,
    InputTooLongError,
    InternalError,
    InvalidArgumentError,
    InvalidConfigError,
    InvalidJsonError,
    InvalidNotificationError,
    InvalidOrderError,
    InvalidUtf8Error,
    MalformedResponseError,
    NetworkError,
    NullArgumentError,
    PanicError,
    RejectedError,
    ResultCode,
    TokenStoreError,
    WxPayError,
)

# The result codes as module constants, named as in include/wxpay.h.
globals().update({code.name: code for code in ResultCode})

__all__ = [
    "Client",
    "sign",
    "version",
    "result_name",
    "result_message",
    "ResultCode",
    "MAX_INPUT_BYTES",
    "ERROR_CLASSES",
    "WxPayError",
    "NullArgumentError",
    "InvalidUtf8Error",
    "InputTooLongError",
    "InvalidJsonError",
    "InvalidConfigError",
    "InvalidOrderError",
    "InvalidArgumentError",
    "InvalidNotificationError",
    "NetworkError",
    "HttpStatusError",
    "GatewayError",
    "MalformedResponseError",
    "TokenStoreError",
    "RejectedError",
    "PanicError",
    "InternalError",
] + [code.name for code in ResultCode]
