"""The client and the signing function, over the C API."""

import ctypes
import json
import threading
from typing import Any, Dict, Mapping, Union

from . import _native
from .errors import error_from

JsonInput = Union[Mapping[str, Any], str]


def _json_text(value: JsonInput, argument: str) -> bytes:
    """A mapping as compact JSON (or a str taken as JSON text), encoded for C."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, Mapping):
        # allow_nan=False: NaN and Infinity are not JSON.
        text = json.dumps(dict(value), separators=(",", ":"), allow_nan=False)
    else:
        raise TypeError(
            "{} must be a dict (or JSON text), not {}".format(argument, type(value).__name__)
        )
    return _native.encode(text, argument)


class Client:
    """A WeChat Pay client for one merchant configuration.

    ``config`` is a dict in the schema of ``Config::from_json`` (``appid``,
    ``app_secret``, ``app_key``, ``partner_id``, ``partner_key``,
    ``notify_url``, optional ``api_base``, ``input_charset``, ``timeout_ms``),
    or the same as JSON text. It is checked here, once: a bad configuration
    raises :class:`~wxpay_ctypes.InvalidConfigError` (no network call is made).

    Thread-safe: share one client between threads (it holds the cached
    access_token and the keep-alive connections; the GIL is released during
    each call). Free it with :meth:`close` or a ``with`` block; otherwise it is
    freed when garbage-collected.
    """

    def __init__(self, config: JsonInput) -> None:
        lib = _native.lib()
        data = _json_text(config, "config_json")
        self._free = lib.wxpay_client_free  # kept for __del__ at interpreter exit
        self._handle = None  # type: Any
        self._busy = 0
        self._idle = threading.Condition(threading.Lock())
        handle = ctypes.c_void_p()
        error = ctypes.c_void_p()
        code = lib.wxpay_client_new(data, ctypes.byref(handle), ctypes.byref(error))
        document = _native.take_string(error)
        if code != 0:
            raise error_from(code, document)
        self._handle = handle.value

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
        data = _json_text(order, "order_json")
        lib = _native.lib()
        with self._idle:
            if self._handle is None:
                raise ValueError("this wxpay_ctypes.Client is closed")
            handle = self._handle
            self._busy += 1
        try:
            text = _native.call(lib.wxpay_build_pay_params, ctypes.c_void_p(handle), data)
        finally:
            with self._idle:
                self._busy -= 1
                if self._busy == 0:
                    self._idle.notify_all()
        result = json.loads(text)  # type: Dict[str, Any]
        return result

    def close(self) -> None:
        """Frees the client, after the calls in progress on other threads end.
        Closing twice is harmless."""
        with self._idle:
            while self._busy:
                self._idle.wait()
            handle, self._handle = self._handle, None
        if handle is not None:
            self._free(ctypes.c_void_p(handle))

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
            self._free(ctypes.c_void_p(handle))

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
    lib = _native.lib()
    return _native.call(
        lib.wxpay_sign,
        _native.encode(scheme, "scheme"),
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
