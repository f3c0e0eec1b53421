"""The client and the signing function: each a few lines that turn Python
arguments into the C API's (JSON text, UTF-8, fen) and hand them to
:func:`wxpay_ctypes._native.call`."""

import ctypes
import json
import json.encoder
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

from . import _native
from .errors import InvalidArgumentError, InvalidUtf8Error

JsonInput = Union[Mapping[str, Any], str]
Body = Union[bytes, bytearray, memoryview, str]

# The C API's expected amounts are int64_t, with 0 meaning "not checked".
_INT64_MAX = (1 << 63) - 1


def _json_dumps() -> Callable[[Any], str]:
    """``json.dumps(value, separators=(",", ":"), allow_nan=False)``: compact
    JSON, without NaN or Infinity (not JSON), ASCII (ensure_ascii), so there
    is nothing for :func:`_native.encode` to check.

    ``JSONEncoder.encode`` makes a C encoder at every call; this one is made
    once, without the check for cycles (its state would be shared between
    threads). A cycle then ends in RecursionError, and the value is encoded
    again with the check, which raises json's own error for it."""
    checked = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
    try:
        once = json.encoder.c_make_encoder(  # type: ignore
            None, checked.default, json.encoder.encode_basestring_ascii, None,
            checked.key_separator, checked.item_separator, False, False, False)
        sample = {"k": ["\u652f\0", 1, -2.5, True, None, {}]}
        if "".join(once(sample, 0)) != checked.encode(sample):
            return checked.encode
    except Exception:  # not CPython's C encoder, or not with this signature
        return checked.encode

    def dumps(value: Any) -> str:
        try:
            return "".join(once(value, 0))
        except RecursionError:
            return checked.encode(value)

    return dumps


_dumps = _json_dumps()
_loads = json.JSONDecoder().decode
# The known scheme names, encoded once (others are encoded at each call).
_SCHEMES = {
    name: name.encode() for name in ("legacy-package", "legacy-sha1", "v2-md5", "v2-hmac-sha256")
}


def _order_ref(out_trade_no: Optional[str], transaction_id: Optional[str]) -> bytes:
    """The C API's flat order reference; the library checks that exactly one
    is given and what it looks like."""
    ref = {}  # type: Dict[str, str]
    for key, value in (("out_trade_no", out_trade_no), ("transaction_id", transaction_id)):
        if value is None:
            continue
        if not isinstance(value, str):
            raise TypeError("{} must be a str, not {}".format(key, type(value).__name__))
        ref[key] = value
    return _dumps(ref).encode()


def _body_bytes(body: Body) -> bytes:
    """A notification body as the bytes received (a str is taken as UTF-8)."""
    if type(body) is bytes:
        return body
    if isinstance(body, str):
        try:
            return body.encode()
        except UnicodeEncodeError:
            raise InvalidUtf8Error("argument `body` cannot be encoded as UTF-8") from None
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    raise TypeError("body must be bytes or str, not {}".format(type(body).__name__))


def _expected_fee(value: Optional[int], argument: str) -> int:
    """``None`` as the C API's 0 ("not checked"); anything else must be a
    positive int (0 or a negative amount would silently skip the check)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("{} must be an int of fen or None, not {}".format(
            argument, type(value).__name__))
    if not 1 <= value <= _INT64_MAX:
        raise InvalidArgumentError(
            "argument `{}` must be a positive amount of fen (None: not checked)".format(argument)
        )
    return value


def _json_text(value: JsonInput, argument: str) -> bytes:
    """A mapping as compact JSON (or a str taken as JSON text), encoded for C."""
    if type(value) is dict:
        return _dumps(value).encode()
    if isinstance(value, str):
        return _native.encode(value, argument)
    if isinstance(value, Mapping):
        return _dumps(dict(value)).encode()
    raise TypeError(
        "{} must be a dict (or JSON text), not {}".format(argument, type(value).__name__)
    )


class Client:
    """A WeChat Pay client for one merchant configuration.

    ``config`` is a dict in the schema of ``Config::from_json`` (2014 flow:
    ``appid``, ``app_secret``, ``app_key``, ``partner_id``, ``partner_key``,
    ``notify_url``, optional ``api_base``, ``input_charset``, ``timeout_ms``;
    API v2: ``"api": "v2"``, ``appid``, ``mch_id``, ``api_key``,
    ``notify_url``, optional ``sign_type``, ``client_cert``...; API v3:
    ``"api": "v3"``, ``appid``, ``mchid``, ``merchant_private_key``,
    ``merchant_serial_no``, ``api_v3_key``, ``notify_url``, and
    ``wechatpay_public_key`` with ``wechatpay_public_key_id`` or neither), or the same
    as JSON text. It is checked here, once: a bad configuration
    raises :class:`~wxpay_ctypes.InvalidConfigError` (no network call is made).

    Thread-safe: share one client between threads (it holds the cached
    access_token and the keep-alive connections; the GIL is released during
    each call). Free it with :meth:`close` or a ``with`` block; otherwise it is
    freed when garbage-collected.
    """

    def __init__(self, config: JsonInput) -> None:
        lib = _native.lib()
        data = _json_text(config, "config_json")
        self._lib = lib
        self._free = lib.wxpay_client_free  # kept for __del__ at interpreter exit
        self._handle = None  # type: Any
        # Calls in progress, and close()s waiting for them to end.
        self._busy = 0
        self._closing = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._handle = _native.call(lib.wxpay_client_new, data, out=_native.HANDLE)

    def _call(self, function: Any, *args: Any, out: Optional[str] = _native.TEXT) -> Any:
        """``function(client, *args, ...)`` through :func:`_native.call`; the
        handle stays alive (``close`` waits) until it returns."""
        with self._lock:
            handle = self._handle
            if handle is None:
                raise ValueError("this wxpay_ctypes.Client is closed")
            self._busy += 1
        try:
            return _native.call(function, handle, *args, out=out)
        finally:
            with self._lock:
                self._busy -= 1
                if self._closing and not self._busy:
                    self._idle.notify_all()

    def _json(self, function: Any, *args: Any) -> Any:
        """:meth:`_call` of a function answering JSON, parsed."""
        return _loads(self._call(function, *args))

    def build_pay_params(self, order: JsonInput) -> Dict[str, Any]:
        """Runs the payment flow for ``order`` and returns the app's parameters.

        ``order`` is a dict in the schema of ``Order::from_json``:
        ``out_trade_no``, exactly one of ``total_fee`` (int, fen) or
        ``total_yuan`` (a decimal *string* of yuan such as ``"19.99"``;
        floats are refused), ``body``, ``client_ip``, optional ``attach``,
        ``expire_minutes``, ``traceid``.

        Returns ``{"appid", "partnerid", "prepayid", "package", "noncestr",
        "timestamp", "sign", "out_trade_no", "total_fee"}``. Raises a
        :class:`~wxpay_ctypes.WxPayError` subclass on failure, and
        ``ValueError`` once the client is closed.
        """
        return self._json(self._lib.wxpay_build_pay_params, _json_text(order, "order_json"))

    # ---- API v2 (a client configured with "api": "v2"; a 2014-flow client
    # raises InvalidArgumentError) ----

    def query_order(
        self, out_trade_no: Optional[str] = None, transaction_id: Optional[str] = None
    ) -> Dict[str, Any]:
        """The state of an order, named by exactly one of ``out_trade_no`` and
        ``transaction_id`` (``orderquery``).

        Returns ``{"out_trade_no", "transaction_id", "trade_state",
        "trade_state_desc", "total_fee", "time_end"}``; ``trade_state`` is the
        gateway's spelling (``"SUCCESS"``, ``"NOTPAY"``, ``"REFUND"``,
        ``"CLOSED"``...), absent values are ``None``.
        """
        return self._json(self._lib.wxpay_query_order, _order_ref(out_trade_no, transaction_id))

    def close_order(self, out_trade_no: str) -> None:
        """Closes an unpaid order (``closeorder``). A paid one raises
        :class:`~wxpay_ctypes.RejectedError` with ``gateway_code`` ``"ORDERPAID"``."""
        data = _native.encode(out_trade_no, "out_trade_no")
        self._call(self._lib.wxpay_close_order, data, out=None)

    def refund(
        self,
        *,
        out_refund_no: str,
        total_fee: int,
        refund_fee: int,
        out_trade_no: Optional[str] = None,
        transaction_id: Optional[str] = None,
        refund_desc: Optional[str] = None
    ) -> Dict[str, Any]:
        """Refunds ``refund_fee`` fen of the order (exactly one of
        ``out_trade_no`` and ``transaction_id``) whose amount is ``total_fee``
        fen. ``out_refund_no`` is unique per refund: sending the same one
        again does not refund twice.

        Returns the receipt ``{"out_refund_no", "refund_id", "refund_fee"}``;
        the outcome comes later, as a refund notification and from
        :meth:`query_refunds`.
        """
        refund = {"out_refund_no": out_refund_no, "total_fee": total_fee, "refund_fee": refund_fee}
        optional = (("out_trade_no", out_trade_no), ("transaction_id", transaction_id),
                    ("refund_desc", refund_desc))
        refund.update((key, value) for key, value in optional if value is not None)
        return self._json(self._lib.wxpay_refund, _json_text(refund, "refund_json"))

    def query_refunds(
        self, out_trade_no: Optional[str] = None, transaction_id: Optional[str] = None
    ) -> List[Dict[str, Any]]:
        """The refunds of an order (``refundquery``): a list of
        ``{"out_refund_no", "refund_id", "refund_fee", "refund_status"}``. An
        order without refunds raises :class:`~wxpay_ctypes.RejectedError`
        (``gateway_code`` ``"REFUNDNOTEXIST"``), as the gateway answers."""
        return self._json(self._lib.wxpay_query_refunds, _order_ref(out_trade_no, transaction_id))

    # ---- notifications ----

    def _verify(
        self, function: Any, body: Body, expected: Optional[int], argument: str, *before: bytes
    ) -> Any:
        """The notification a verifier answers: ``function(client, *before,
        body, len(body), expected fee, ...)``."""
        data = _body_bytes(body)
        fee = _expected_fee(expected, argument)
        return self._json(function, *before, data, len(data), fee)["notification"]

    def verify_payment_notification(
        self, body: Body, expected_total_fee: Optional[int] = None
    ) -> Dict[str, Any]:
        """Verifies a payment notification: the raw body WeChat sent to
        ``notify_url`` (API v2: the XML; 2014 flow: the query string), as
        bytes (or str, taken as UTF-8). ``expected_total_fee``: the order's
        amount in fen, which the notification must claim (``None``: not
        checked).

        Returns the notification ``{"paid", "out_trade_no", "transaction_id",
        "total_fee", "time_end", "attach", "fields"}``: act on it
        idempotently per ``out_trade_no`` (ship only when ``paid``), then
        answer :meth:`notification_success_reply`. Any failure raises a
        :class:`~wxpay_ctypes.WxPayError` (:class:`InvalidNotificationError`
        when the body is refused) whose ``reply`` is the failure reply to
        answer with; act on nothing.
        """
        function = self._lib.wxpay_verify_payment_notification
        return self._verify(function, body, expected_total_fee, "expected_total_fee")

    def verify_refund_notification(
        self, body: Body, expected_refund_fee: Optional[int] = None
    ) -> Dict[str, Any]:
        """Decrypts and checks an API v2 refund notification (the raw XML
        body). Returns ``{"out_trade_no", "out_refund_no", "refund_id",
        "total_fee", "refund_fee", "refund_status", "fields"}``; failures as
        for :meth:`verify_payment_notification`."""
        function = self._lib.wxpay_verify_refund_notification
        return self._verify(function, body, expected_refund_fee, "expected_refund_fee")

    def verify_signed_notification(
        self,
        headers: Mapping[str, str],
        body: Body,
        expected_total_fee: Optional[int] = None,
    ) -> Dict[str, Any]:
        """Verifies an API v3 payment notification (a client configured with
        ``"api": "v3"``): ``headers`` are the request's headers as a mapping
        of str to str (names in any case; the ``Wechatpay-Serial``,
        ``-Signature``, ``-Timestamp`` and ``-Nonce`` headers are the ones
        used; a name given twice in two cases raises
        :class:`~wxpay_ctypes.InvalidArgumentError`), ``body`` the raw JSON
        body as bytes (or str, taken as UTF-8), ``expected_total_fee`` the
        order's amount in fen (``None``: not checked).

        Returns the decrypted notification ``{"paid", "out_trade_no",
        "transaction_id", "total_fee", "time_end", "attach", "fields"}``: act
        on it idempotently per ``out_trade_no``, then answer with status 204
        (or 200) and an empty body. Any failure raises a
        :class:`~wxpay_ctypes.WxPayError` whose ``reply`` (the
        ``{"code":"FAIL",...}`` body) and ``reply_status`` (500) are the
        answer to send; act on nothing.
        """
        if not isinstance(headers, Mapping):
            raise TypeError("headers must be a dict, not {}".format(type(headers).__name__))
        names = {}  # type: Dict[str, str]
        for name, value in headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError("headers must map str to str")
            names[name] = value
        return self._verify(
            self._lib.wxpay_verify_signed_notification,
            body,
            expected_total_fee,
            "expected_total_fee",
            _dumps(names).encode(),
        )

    def download_certificates(self) -> int:
        """Downloads WeChat Pay's platform certificates now (API v3,
        certificate mode) and returns how many there are; clients also do
        this by themselves when needed."""
        count = ctypes.c_int32(0)
        self._call(self._lib.wxpay_download_certificates, ctypes.byref(count), out=None)
        return count.value

    def notification_success_reply(self) -> str:
        """The body that acknowledges a verified notification (the v2
        SUCCESS XML, ``success`` for the 2014 flow, the empty string for API
        v3, sent with status 204)."""
        return self._call(self._lib.wxpay_notification_success_reply)

    def notification_failure_reply(self, reason: str) -> str:
        """The body that refuses a notification (WeChat sends it again), with
        ``reason`` in it as it is: for a notification that verified but could
        not be recorded. Verification failures carry theirs as ``reply``."""
        data = _native.encode(reason, "reason")
        return self._call(self._lib.wxpay_notification_failure_reply, data)

    def close(self) -> None:
        """Frees the client, after the calls in progress on other threads end.
        Closing twice is harmless."""
        with self._idle:
            self._closing += 1
            try:
                while self._busy:
                    self._idle.wait()
            finally:
                self._closing -= 1
            handle, self._handle = self._handle, None
        if handle is not None:
            self._free(handle)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._handle is None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # No other reference exists, so no call is in progress.
        handle = getattr(self, "_handle", None)
        if handle is not None:
            self._handle = None
            self._free(handle)

    def __repr__(self) -> str:
        # Never the configuration: it holds secrets.
        return "<wxpay_ctypes.Client {}>".format("closed" if self.closed else "open")


def sign(scheme: str, key: str, params: JsonInput) -> str:
    """Signs a flat parameter map as ``wxpay sign`` does.

    ``scheme`` is ``"legacy-package"`` (MD5, upper-case hex, keyed with the
    partner key), ``"legacy-sha1"`` (SHA1, lower-case hex, keyed with the app
    key), or an API v2 scheme (``"v2-md5"``, ``"v2-hmac-sha256"``, keyed with
    the API key); an unknown name raises
    :class:`~wxpay_ctypes.InvalidArgumentError` listing the known ones.
    ``params`` is a dict of str or int values (or JSON text). Returns the hex
    signature. Never logs or echoes ``key``.
    """
    scheme_data = _SCHEMES.get(scheme) if type(scheme) is str else None
    return _native.call(
        _native.lib().wxpay_sign,
        scheme_data or _native.encode(scheme, "scheme"),
        _native.encode(key, "key"),
        _json_text(params, "params_json"),
    )


def version() -> str:
    """The version of the loaded libwxpay."""
    return _native.lib().wxpay_version().decode("utf-8")


def result_name(code: int) -> str:
    """The C API's name of a result code (``"gateway"``...; ``"unknown"``)."""
    return _native.lib().wxpay_result_name(code).decode("utf-8")


def result_message(code: int) -> str:
    """The C API's one-line description of a result code."""
    return _native.lib().wxpay_result_message(code).decode("utf-8")
