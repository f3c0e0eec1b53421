#!/usr/bin/env python3
"""The article's ``getPrePaidResult``, ported to Python 3 as written: the baseline
of the benchmarks (scripts/bench.sh, BENCHMARKS.md).

Source: 微信支付的开发流程详解 (2019-05-03, 王旭), Python 2;
/work/shared/reference/seed-article-wechat-pay-flow.txt has ``getPrePaidResult``
and ``gerPrepayId``; the article's second page has ``createMD5Signature`` and
``getPackage``. ``getAccessToken`` and ``createSHA1Signature`` are called but
not shown by the article: they are written here in the same style (one
``requests.get``; the MD5 helper with SHA1, lower case and no key appended,
since ``appkey`` is one of the signed parameters).

Only what Python 3 forces was changed: ``print`` is a function,
``iteritems`` is ``items``, ``urllib.quote`` is ``urllib.parse.quote``, and
``hashlib`` takes bytes, so strings are encoded: the package in GBK (the
``input_charset`` the article declares; Python 2 hashed whatever bytes the
caller's ``str`` held), the SHA1 strings in UTF-8 (they are ASCII).

Every defect is kept on purpose (PROTOCOL.md section 3): it is the baseline.

- a new access_token for every order (two round trips per order, and each
  fetch invalidates the previous token);
- ``requests.get``/``requests.post`` without a session: a new TCP connection
  for every request;
- money through ``float``: ``int(float("19.99")*100)`` is 1998 fen, not 1999;
- ``random.randint(10, 100)`` gives a three-digit ``addtion`` one time in 91;
- ``time_start``/``time_expire`` in Unix seconds instead of
  ``yyyyMMddHHmmss`` Beijing time: **the sandbox refuses every such order with
  errcode 47001**, as the protocol says the field is ``yyyyMMddHHmmss``;
- the client IP printed and the token formatted into a log line (``logging``
  at its default level drops it, after formatting);
- a constant ``traceid``; the final ``package`` is ``sign=WXPay`` where the
  app SDK wants ``Sign=WXPay`` (the sandbox does not see the final ``sign``,
  the phone would refuse it); noncestr from ``random`` (not a CSPRNG).

Because of the time defect, the article's code as written gets no prepay id
from the sandbox at all. The benchmark runs it twice: as written (its failure
rate is part of the figure: every order costs two round trips and fails), and
as ``article (time format fixed)``, where the only change is
``FIX_TIME_FORMAT = True``: ``time_start``/``time_expire`` become
``yyyyMMddHHmmss`` Beijing time, so its throughput can be compared with
libwxpay's. The fix is marked ``# BENCH FIX`` below; nothing else differs.

Run it alone (``pip install requests`` first; the sandbox from
``wxpay sandbox --port 0``)::

    python3 benches/article/get_prepaid_result.py --api-base http://127.0.0.1:PORT --orders 300
    python3 benches/article/get_prepaid_result.py --api-base ... --fix-time-format
    python3 benches/article/get_prepaid_result.py --sign-only 20000   # no network

Each run prints one JSON summary line (orders/s, p50/p99 latency in µs, the
outcomes and the defects seen); latency is timed around each
``getPrePaidResult`` call.
"""

import argparse
import collections
import contextlib
import decimal
import hashlib
import json
import logging
import os
import random
import sys
import time
import urllib.parse
import urllib.request

import requests

# The article reads its merchant from a global ``config``; main() fills it
# from the sandbox's /sandbox/config.
config = {
    "appId": "",
    "appSecret": "",
    "partnerId": "",
    "partnerKey": "",
    "paySignKey": "",
    "notify_url": "",
    "api_base": "",
}

# BENCH FIX: False runs the article as written (Unix seconds, refused by the
# sandbox with 47001); True sends yyyyMMddHHmmss in Beijing time (UTC+8).
FIX_TIME_FORMAT = False


class WeixinRequestHandler(object):
    """The article's helper class (its constructor is not shown: this one
    keeps the URLs and keys the methods use)."""

    def __init__(self, order_no):
        self.order_no = order_no
        self.partnerKey = config["partnerKey"]
        self.paySignKey = config["paySignKey"]
        self.tokenUrl = (
            config["api_base"] + "/cgi-bin/token?grant_type=client_credential&appid=%s&secret=%s"
        )
        self.gateUrl = config["api_base"] + "/pay/genprepay?access_token=%s"

    """获取access_token (not shown in the article: same style as gerPrepayId)"""

    def getAccessToken(self):
        response = requests.get(self.tokenUrl % (config["appId"], config["appSecret"]))
        if response.status_code == 200:
            text = response.text
            text = json.loads(text)
            if "access_token" in text:
                return text["access_token"]
        return None

    """创建MD5签名 (the article's page 2)"""

    def createMD5Signature(self, signParams):
        """先排序"""
        sortedParams = sorted(signParams.items(), key=lambda d: d[0])
        """拼接"""
        stringSignTemp = "&".join(
            ["%s=%s" % (item[0], item[1]) for item in sortedParams if item[0] != "sign" and "" != item[1]]
        )
        # 加上财付通商户权限密钥
        stringSignTemp += "&key=%s" % (self.partnerKey)
        # 使用MD5进行签名,然后转化为大写
        stringSign = hashlib.md5(stringSignTemp.encode("gbk")).hexdigest().upper()  # Upper
        return stringSign

    """组装package (the article's page 2)"""

    def getPackage(self, packageParams):
        """先获取params的sign,然后将params进行urlencode,最后拼接,加上sign"""
        sign = self.createMD5Signature(packageParams)
        packageParams = sorted(packageParams.items(), key=lambda d: d[0])
        stringParams = "&".join(
            ["%s=%s" % (item[0], urllib.parse.quote(str(item[1]), encoding="gbk")) for item in packageParams]
        )
        stringParams += "&sign=%s" % (sign)
        return stringParams

    """SHA1签名 (not shown in the article: its MD5 helper with SHA1, lower case)"""

    def createSHA1Signature(self, signParams):
        sortedParams = sorted(signParams.items(), key=lambda d: d[0])
        stringSignTemp = "&".join(["%s=%s" % (item[0], item[1]) for item in sortedParams])
        stringSign = hashlib.sha1(stringSignTemp.encode("utf-8")).hexdigest()
        return stringSign

    """获取预支付prepayid"""

    def gerPrepayId(self, token, requestParams):
        """将参数,包括package,进行json化,然后发起post请求"""
        data = json.dumps(requestParams)
        response = requests.post(self.gateUrl % (token), data=data)
        if response.status_code == 200:
            text = response.text
            text = json.loads(text)
            errcode = text["errcode"]
            if errcode == 0:
                return text["prepayid"]
        return None


"""接收app的请求,返回prepayid"""


class WeixinRequirePrePaidHandler(object):  # BasicTemplateHandler in the article
    """这个方法在OrdersAddHandler中被调用"""

    @staticmethod
    def getPrePaidResult(order_no, total_pay, product_name, client_ip):
        """封装了常用的签名算法"""
        weixinRequestHandler = WeixinRequestHandler(order_no)
        """收集订单相关信息"""
        addtion = str(random.randint(10, 100))  # 产生一个两位的数字,拼接在订单号的后面
        out_trade_no = str(order_no) + addtion
        order_price = float(total_pay)  # 这里必须允许浮点数,后面转化成分之后转化为int
        # order_price = 0.01 #测试
        remote_addr = client_ip  # 客户端的IP地址
        print(remote_addr)
        current_time = int(time.time())
        order_create_time = str(current_time)
        order_deadline = str(current_time + 20 * 60)
        if FIX_TIME_FORMAT:  # BENCH FIX: the only change of the fixed variant
            order_create_time = time.strftime("%Y%m%d%H%M%S", time.gmtime(current_time + 8 * 3600))
            order_deadline = time.strftime("%Y%m%d%H%M%S", time.gmtime(current_time + 20 * 60 + 8 * 3600))

        """这里的一些参数供下面使用"""
        noncestr = hashlib.md5(str(random.random()).encode("utf-8")).hexdigest()
        timestamp = str(int(time.time()))
        pack = "Sign=WXPay"

        """获取token"""
        access_token = weixinRequestHandler.getAccessToken()
        logging.info("get token: %s" % access_token)
        if access_token:
            """设置package参数"""
            packageParams = {}
            packageParams["bank_type"] = "WX"  # 支付类型
            packageParams["body"] = product_name  # 商品名称
            packageParams["fee_type"] = "1"  # 人民币 fen
            packageParams["input_charset"] = "GBK"  # GBK
            packageParams["notify_url"] = config["notify_url"]  # post异步消息通知
            packageParams["out_trade_no"] = str(out_trade_no)  # 订单号
            packageParams["partner"] = config["partnerId"]  # 商户号
            packageParams["total_fee"] = str(int(order_price * 100))  # 订单金额,单位是分
            packageParams["spbill_create_ip"] = remote_addr  # IP
            packageParams["time_start"] = order_create_time  # 订单生成时间
            packageParams["time_expire"] = order_deadline  # 订单失效时间

            """获取package"""
            package = weixinRequestHandler.getPackage(packageParams)

            """设置支付参数"""
            signParams = {}
            signParams["appid"] = config["appId"]
            signParams["appkey"] = config["paySignKey"]  # delete
            signParams["noncestr"] = noncestr
            signParams["package"] = package
            signParams["timestamp"] = timestamp
            signParams["traceid"] = "mytraceid_001"

            """生成支付签名"""
            app_signature = weixinRequestHandler.createSHA1Signature(signParams)
            """增加不参与签名的额外参数"""
            signParams["sign_method"] = "sha1"
            signParams["app_signature"] = app_signature

            """剔除appKey"""
            del signParams["appkey"]

            """获取prepayid"""
            prepayid = weixinRequestHandler.gerPrepayId(access_token, signParams)
            if prepayid:
                """使用拿到的prepayid再次准备签名"""
                pack = "sign=WXPay"
                prepayParams = {}
                prepayParams["appid"] = config["appId"]
                prepayParams["appkey"] = config["paySignKey"]
                prepayParams["noncestr"] = noncestr
                prepayParams["package"] = pack
                prepayParams["partnerid"] = config["partnerId"]
                prepayParams["prepayid"] = prepayid
                prepayParams["timestamp"] = timestamp

                """生成签名"""
                sign = weixinRequestHandler.createSHA1Signature(prepayParams)

                """准备输出参数"""
                returnParams = {}
                returnParams["status"] = 0
                returnParams["retmsg"] = "success"
                returnParams["appid"] = config["appId"]
                returnParams["noncestr"] = noncestr
                returnParams["package"] = pack
                returnParams["prepayid"] = prepayid
                returnParams["timestamp"] = timestamp
                returnParams["sign"] = sign
                returnParams["partnerId"] = config["partnerId"]
                returnParams["addtion"] = addtion

            else:
                """prepayid获取失败"""
                returnParams = {}
                returnParams["status"] = -1
                returnParams["retmsg"] = "prepayid获取失败"
        else:
            """token获取失败"""
            returnParams = {}
            returnParams["status"] = -1
            returnParams["retmsg"] = "token获取失败"

        """生成json格式文本,然后返回给APP"""
        return returnParams


# --------------------------------------------------------------------------
# The benchmark harness (not the article's code).


def percentile(sorted_values, p):
    """The same rule as `wxpay load`: the value at index len*p/100."""
    if not sorted_values:
        return 0
    return sorted_values[min(len(sorted_values) * p // 100, len(sorted_values) - 1)]


def load_config(api_base):
    with urllib.request.urlopen(api_base + "/sandbox/config") as answer:
        sandbox = json.load(answer)
    config.update(
        {
            "appId": sandbox["appid"],
            "appSecret": sandbox["app_secret"],
            "partnerId": sandbox["partner_id"],
            "partnerKey": sandbox["partner_key"],
            "paySignKey": sandbox["app_key"],
            "notify_url": sandbox["notify_url"],
            "api_base": api_base,
        }
    )


def sandbox_stats(api_base):
    with urllib.request.urlopen(api_base + "/sandbox/stats") as answer:
        return json.load(answer)


def run_orders(args):
    load_config(args.api_base)
    before = sandbox_stats(args.api_base)
    # Record the gateway's answers without parsing them during the timed loop:
    # the article throws the errcode away, the summary reports it.
    answers = []
    real_post = requests.post

    def recording_post(*a, **kw):
        response = real_post(*a, **kw)
        answers.append(response)
        return response

    requests.post = recording_post
    results = []
    latencies = []
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # the article's print
        started = time.perf_counter_ns()
        for i in range(args.orders):
            t = time.perf_counter_ns()
            result = WeixinRequirePrePaidHandler.getPrePaidResult(
                "%s%d" % (args.prefix, i), args.amount, args.body, args.client_ip
            )
            latencies.append((time.perf_counter_ns() - t) // 1000)
            results.append(result)
        elapsed_ns = time.perf_counter_ns() - started
    requests.post = real_post
    after = sandbox_stats(args.api_base)

    outcomes = collections.Counter(r["retmsg"] for r in results)
    errcodes = collections.Counter()
    for response in answers:
        try:
            errcodes[str(json.loads(response.text).get("errcode"))] += 1
        except ValueError:
            errcodes["http %d" % response.status_code] += 1
    ok = [r for r in results if r["status"] == 0]
    # What the sandbox recorded for the accepted orders: the amount actually charged.
    expected_fen = int(decimal.Decimal(args.amount) * 100)
    wrong_amount = 0
    if ok:
        with urllib.request.urlopen(args.api_base + "/sandbox/orders") as answer:
            recorded = {o["out_trade_no"]: o for o in json.load(answer)}
        for i, r in enumerate(results):
            if r["status"] == 0:
                no = "%s%d%s" % (args.prefix, i, r["addtion"])
                if recorded.get(no, {}).get("total_fee") != expected_fen:
                    wrong_amount += 1
    latencies.sort()
    summary = {
        "impl": "article (time format fixed)" if FIX_TIME_FORMAT else "article (as written)",
        "orders": len(results),
        "ok": len(ok),
        "failed": len(results) - len(ok),
        "outcomes": dict(outcomes),
        "genprepay_errcodes": dict(errcodes),
        "elapsed_ms": elapsed_ns // 1_000_000,
        "orders_per_sec": round(len(results) * 1e9 / max(elapsed_ns, 1), 1),
        "latency_us": {
            "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99),
            "max": latencies[-1] if latencies else 0,
        },
        "defects_seen": {
            "token_fetches": after["token_fetches"] - before["token_fetches"],
            "tcp_connections": after["connections"] - before["connections"] - 1,
            "wrong_amount_fen": wrong_amount,
            "three_digit_addtion": sum(1 for r in ok if len(r["addtion"]) != 2),
            "final_package_not_Sign=WXPay": sum(1 for r in ok if r["package"] != "Sign=WXPay"),
        },
        "amount_yuan": args.amount,
        "charged_fen": int(float(args.amount) * 100),
    }
    print(json.dumps(summary, ensure_ascii=False))


def run_sign_only(args):
    """The article's pure work per order (package MD5 + two SHA1), no network:
    the same steps as getPrePaidResult between the two round trips."""
    config.update(
        {
            "appId": "wxd930ea5d5a258f4f",
            "partnerId": "1900000109",
            "partnerKey": "8934e7d15453e97507ef794cf7b0519d",
            "paySignKey": "L8LrMqqeGRxST5reouB0K66CaYAWpqhAVsq7ggKkxHCOastWksvuX1uvmvQclxaHoYd3ElNBrNO2DHnnzgfVG9Qs473M3DTOZug5er46FhuGofumV8H2FVR9qkjSlC5K",
            "notify_url": "http://weixin.qq.com",
        }
    )
    handler = WeixinRequestHandler("x")
    packageParams = {
        "bank_type": "WX",
        "body": args.body,
        "fee_type": "1",
        "input_charset": "GBK",
        "notify_url": config["notify_url"],
        "out_trade_no": "7240b65810859cbf2a8d9f76a638c0a3",
        "partner": config["partnerId"],
        "total_fee": str(int(float(args.amount) * 100)),
        "spbill_create_ip": args.client_ip,
        "time_start": "20140508100936",
        "time_expire": "20140508102936",
    }

    def one():
        package = handler.getPackage(packageParams)
        signParams = {
            "appid": config["appId"],
            "appkey": config["paySignKey"],
            "noncestr": "e7d161ac8d8a76529d39d9f5b4249ccb",
            "package": package,
            "timestamp": "1399514976",
            "traceid": "mytraceid_001",
        }
        handler.createSHA1Signature(signParams)
        handler.createSHA1Signature(
            {
                "appid": config["appId"],
                "appkey": config["paySignKey"],
                "noncestr": "e7d161ac8d8a76529d39d9f5b4249ccb",
                "package": "sign=WXPay",
                "partnerid": config["partnerId"],
                "prepayid": "1101000000140429eb40476f8896f4c9",
                "timestamp": "1399514976",
            }
        )

    for _ in range(min(1000, args.sign_only)):
        one()
    started = time.perf_counter_ns()
    for _ in range(args.sign_only):
        one()
    elapsed_ns = time.perf_counter_ns() - started
    print(
        json.dumps(
            {
                "impl": "article signing (Python: package MD5 + 2 SHA1)",
                "iterations": args.sign_only,
                "ns_per_order": round(elapsed_ns / args.sign_only),
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-base", help="the sandbox, as `wxpay sandbox` prints it")
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--prefix", default="A%d" % (os.getpid() % 100000))
    parser.add_argument("--amount", default="19.99", help="total_pay, yuan (a string, as a form gives it)")
    parser.add_argument("--body", default="支付测试")
    parser.add_argument("--client-ip", default="196.168.1.1")
    parser.add_argument("--fix-time-format", action="store_true", help="the 'article (time format fixed)' variant")
    parser.add_argument("--sign-only", type=int, default=0, metavar="N", help="time N signings, no network")
    args = parser.parse_args()
    global FIX_TIME_FORMAT
    FIX_TIME_FORMAT = args.fix_time_format
    if args.sign_only:
        run_sign_only(args)
    elif args.api_base:
        run_orders(args)
    else:
        parser.error("give --api-base (or --sign-only N)")


if __name__ == "__main__":
    sys.exit(main())
