"""A drop-in for ``getPrePaidResult`` of the 2014-era article (微信支付的开发流程详解).

:func:`get_prepaid_result` takes the same arguments (plus the merchant
configuration, which the article read from a global) and returns the same
dict, but without the article's defects:

- the amount is converted exactly: ``total_pay`` may be a ``str``, ``int``,
  ``Decimal`` or ``float`` (a float through its ``repr``), so ``0.29`` is 29
  fen, never 28; it is sent to the library as a decimal string of yuan;
  an amount that is not a whole number of fen is refused, not truncated;
- the two random digits appended to the order number really are two digits
  (10 to 99, from :mod:`secrets`; the article's ``randint(10, 100)`` gives
  ``100`` one time in 91);
- the access_token is fetched once and cached: one client per configuration
  is kept for the life of the process and shared by every call and thread;
- ``time_start``/``time_expire`` are in Beijing time, ``traceid`` is per
  order, the final ``package`` is ``Sign=WXPay``, and nothing (token, client
  IP) is printed or logged.
"""

import hashlib
import json
import math
import secrets
import threading
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, Mapping, Union

from .client import Client
from .errors import InvalidConfigError, WxPayError

_FEN = Decimal("0.01")

_clients = {}  # type: Dict[str, Client]
_clients_lock = threading.Lock()


def yuan_string(total_pay: Union[str, int, float, Decimal]) -> str:
    """``total_pay`` (yuan) as an exact decimal string with two decimals.

    Raises ``TypeError`` for other types (``bool`` included) and
    ``ValueError`` for an amount that is not finite, not positive, or not a
    whole number of fen.
    """
    if isinstance(total_pay, bool):
        raise TypeError("total_pay must be a str, int, Decimal or float, not bool")
    try:
        if isinstance(total_pay, Decimal):
            amount = total_pay
        elif isinstance(total_pay, int):
            amount = Decimal(total_pay)
        elif isinstance(total_pay, float):
            if not math.isfinite(total_pay):
                raise ValueError("total_pay must be a finite amount of yuan")
            # repr gives the shortest text that reads back as the same float:
            # 0.29 -> "0.29", where 0.29 * 100 would give 28.999999999999996.
            amount = Decimal(repr(total_pay))
        elif isinstance(total_pay, str):
            amount = Decimal(total_pay.strip())
        else:
            raise TypeError(
                "total_pay must be a str, int, Decimal or float, not {}".format(
                    type(total_pay).__name__
                )
            )
        if not amount.is_finite():
            raise ValueError("total_pay must be a finite amount of yuan")
        if amount <= 0:
            raise ValueError("total_pay must be positive")
        fen = amount.quantize(_FEN)
    except InvalidOperation:
        raise ValueError("total_pay is not an amount of yuan") from None
    if fen != amount:
        raise ValueError("total_pay has more than two decimals: it is not a whole number of fen")
    return format(fen, "f")


def addtion() -> str:
    """Two random decimal digits, ``"10"`` to ``"99"`` (the article's ``addtion``)."""
    return str(10 + secrets.randbelow(90))


def client_for(config: Union[Mapping[str, Any], Client]) -> Client:
    """The process-wide client of ``config``: created on first use, then shared
    (so its access_token is fetched once and reused). A :class:`Client` is used
    as it is."""
    if isinstance(config, Client):
        return config
    if not isinstance(config, Mapping):
        raise TypeError("config must be a dict or a wxpay_ctypes.Client")
    key = hashlib.sha256(
        json.dumps(dict(config), sort_keys=True, separators=(",", ":")).encode("utf-8")
    ).hexdigest()
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = Client(config)
            _clients[key] = client
        return client


def clear_cache() -> None:
    """Closes and forgets every cached client (the next call fetches a new token)."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


def get_prepaid_result(
    config: Union[Mapping[str, Any], Client],
    order_no: Any,
    total_pay: Union[str, int, float, Decimal],
    product_name: str,
    client_ip: str,
) -> Dict[str, Any]:
    """Gets a prepay id for an order and returns what the app needs, as the
    article's ``getPrePaidResult(order_no, total_pay, product_name, client_ip)``.

    ``config`` is the merchant configuration (a dict in the schema of
    :class:`~wxpay_ctypes.Client`) or a client. The trade number sent is
    ``str(order_no)`` followed by two random digits, returned as ``addtion``.

    Returns ``{"status": 0, "retmsg": "success", "appid", "noncestr",
    "package", "prepayid", "timestamp", "sign", "partnerId", "addtion"}``, or
    ``{"status": -1, "retmsg": reason}`` when the amount or order is invalid or
    the gateway fails. An invalid configuration raises
    :class:`~wxpay_ctypes.InvalidConfigError` (as a missing key of the
    article's global config raised), and an amount of an unsupported type
    raises ``TypeError``.
    """
    extra = addtion()
    out_trade_no = str(order_no) + extra
    try:
        total_yuan = yuan_string(total_pay)
    except ValueError as error:
        return {"status": -1, "retmsg": str(error)}
    try:
        params = client_for(config).build_pay_params(
            {
                "out_trade_no": out_trade_no,
                "total_yuan": total_yuan,
                "body": product_name,
                "client_ip": client_ip,
            }
        )
    except InvalidConfigError:
        raise
    except WxPayError as error:
        return {"status": -1, "retmsg": error.message}
    return {
        "status": 0,
        "retmsg": "success",
        "appid": params["appid"],
        "noncestr": params["noncestr"],
        "package": params["package"],
        "prepayid": params["prepayid"],
        "timestamp": params["timestamp"],
        "sign": params["sign"],
        "partnerId": params["partnerid"],
        "addtion": extra,
    }


#: The article's spelling, for code that calls it by that name.
getPrePaidResult = get_prepaid_result
