// Host test of the Kotlin binding (bindings/kotlin/com/wxpay/wxpay.kt) on the
// JVM, against a running sandbox. It checks the glue (records in, records and
// exceptions out, sharing across threads), not the signing logic again.
//
// The 2014 flow uses the sandbox's `/sandbox/config`, API v2 its
// `/sandbox/config?api=v2` (merchant 10000100, MD5), API v3 its
// `/sandbox/config?api=v3` (mchid 1900000109, public-key mode).
//
// Run by scripts/check-uniffi.sh:  java ... TestWxPayKt <sandbox base URL>
// Prints one line per check and "N passed, M failed"; exits 1 on any failure.

import com.wxpay.Config
import com.wxpay.Order
import com.wxpay.OrderRef
import com.wxpay.PayParams
import com.wxpay.RefundRequest
import com.wxpay.TradeState
import com.wxpay.WxPayClient
import com.wxpay.WxPayException
import com.wxpay.sign
import java.net.URI
import java.util.concurrent.Callable
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import kotlin.system.exitProcess

private var passed = 0
private var failed = 0

private fun check(name: String, body: () -> Unit) {
    try {
        body()
        passed++
        println("ok   $name")
    } catch (e: Throwable) {
        failed++
        println("FAIL $name: $e")
    }
}

private fun expect(condition: Boolean, what: () -> String) {
    if (!condition) throw AssertionError(what())
}

/** Runs [body], which must throw a [T]; returns it. */
private inline fun <reified T : Throwable> expectThrows(body: () -> Unit): T {
    try {
        body()
    } catch (e: Throwable) {
        if (e is T) return e
        throw AssertionError("expected ${T::class.qualifiedName}, got $e")
    }
    throw AssertionError("expected ${T::class.qualifiedName}, nothing was thrown")
}

/** The flat JSON object of `/sandbox/config` (string values only) as a map. */
private fun parseFlatJson(text: String): Map<String, String> {
    // The unrolled form: a plain run is one greedy step, so a long PEM value
    // does not recurse per character (java.util.regex would overflow the stack).
    val pair = Regex(""""([A-Za-z0-9_]+)"\s*:\s*"([^"\\]*(?:\\.[^"\\]*)*)"""")
    return pair.findAll(text).associate { m -> m.groupValues[1] to unescapeJson(m.groupValues[2]) }
}

/** The text of a JSON string's inside (`\n`, `\"`, `\\`, `\/` escapes; the PEM keys of the v3 config). */
private fun unescapeJson(escaped: String): String {
    val out = StringBuilder()
    var i = 0
    while (i < escaped.length) {
        val c = escaped[i]
        if (c == '\\' && i + 1 < escaped.length) {
            out.append(when (val e = escaped[i + 1]) { 'n' -> '\n'; 'r' -> '\r'; 't' -> '\t'; else -> e })
            i += 2
        } else {
            out.append(c)
            i += 1
        }
    }
    return out.toString()
}

private fun configFrom(json: Map<String, String>) = Config(
    appid = json.getValue("appid"),
    appSecret = json.getValue("app_secret"),
    appKey = json.getValue("app_key"),
    partnerId = json.getValue("partner_id"),
    partnerKey = json.getValue("partner_key"),
    notifyUrl = json.getValue("notify_url"),
    apiBase = json.getValue("api_base"),
    inputCharset = json["input_charset"],
)

/** A v2 client config from `/sandbox/config?api=v2`; the 2014-only keys stay null. */
private fun v2ConfigFrom(json: Map<String, String>) = Config(
    appid = json.getValue("appid"),
    notifyUrl = json.getValue("notify_url"),
    apiBase = json.getValue("api_base"),
    api = json.getValue("api"),
    mchId = json.getValue("mch_id"),
    apiKey = json.getValue("api_key"),
    signType = json["sign_type"],
)

/** A v3 client config (public-key mode) from `/sandbox/config?api=v3`. */
private fun v3ConfigFrom(json: Map<String, String>) = Config(
    appid = json.getValue("appid"),
    notifyUrl = json.getValue("notify_url"),
    apiBase = json.getValue("api_base"),
    api = json.getValue("api"),
    mchid = json.getValue("mchid"),
    merchantPrivateKey = json.getValue("merchant_private_key"),
    merchantSerialNo = json.getValue("merchant_serial_no"),
    apiV3Key = json.getValue("api_v3_key"),
    wechatpayPublicKey = json.getValue("wechatpay_public_key"),
    wechatpayPublicKeyId = json.getValue("wechatpay_public_key_id"),
)

private fun order(no: String, totalFee: UInt? = null, totalYuan: String? = null) = Order(
    outTradeNo = no,
    totalFee = totalFee,
    totalYuan = totalYuan,
    body = "支付测试",
    clientIp = "196.168.1.1",
)

private fun checkPayParams(p: PayParams, no: String, fee: UInt) {
    expect(p.appid == "wxd930ea5d5a258f4f") { "appid ${p.appid}" }
    expect(p.partnerid == "1900000109") { "partnerid ${p.partnerid}" }
    expect(p.`package` == "Sign=WXPay") { "package ${p.`package`}" }
    expect(Regex("[0-9]{10}").matches(p.timestamp)) { "timestamp ${p.timestamp}" }
    expect(Regex("[0-9a-f]{40}").matches(p.sign)) { "sign ${p.sign}" }
    expect(p.noncestr.isNotEmpty()) { "empty noncestr" }
    expect(p.prepayid.isNotEmpty()) { "empty prepayid" }
    expect(p.outTradeNo == no) { "out_trade_no ${p.outTradeNo}" }
    expect(p.totalFee == fee) { "total_fee ${p.totalFee}" }
}

fun main(args: Array<String>) {
    require(args.size == 1) { "usage: TestWxPayKt <sandbox base URL>" }
    val base = args[0].trimEnd('/')
    val sandbox = parseFlatJson(URI("$base/sandbox/config").toURL().readText())
    val config = configFrom(sandbox)
    val client = WxPayClient(config)

    check("build_pay_params with total_yuan returns every field") {
        checkPayParams(client.buildPayParams(order("KT-YUAN-1", totalYuan = "19.99")), "KT-YUAN-1", 1999u)
    }
    check("build_pay_params with total_fee (optional fields left to their defaults)") {
        checkPayParams(client.buildPayParams(order("KT-FEE-1", totalFee = 1u)), "KT-FEE-1", 1u)
    }
    check("a sub-fen amount raises WxPayException.InvalidOrder naming total_yuan") {
        val e = expectThrows<WxPayException.InvalidOrder> {
            client.buildPayParams(order("KT-BAD-1", totalYuan = "0.001"))
        }
        expect(e.field == "total_yuan") { "field ${e.field}" }
        expect(e.detail.startsWith("invalid order: total_yuan")) { "detail ${e.detail}" }
        expect(e.message?.contains("total_yuan") == true) { "message ${e.message}" }
    }
    check("a zero amount raises WxPayException.InvalidOrder") {
        val e = expectThrows<WxPayException.InvalidOrder> {
            client.buildPayParams(order("KT-BAD-2", totalYuan = "0"))
        }
        expect(e.field == "total_yuan") { "field ${e.field}" }
    }
    check("a bad config raises WxPayException.InvalidConfig naming the field") {
        val e = expectThrows<WxPayException.InvalidConfig> {
            WxPayClient(config.copy(apiBase = "http://10.0.0.1"))
        }
        expect(e.field == "api_base") { "field ${e.field}" }
    }
    check("a gateway errcode reaches Kotlin unchanged (WxPayException.Gateway)") {
        val wrong = WxPayClient(config.copy(appSecret = "not-the-secret"))
        val e = expectThrows<WxPayException.Gateway> {
            wrong.buildPayParams(order("KT-GW-1", totalFee = 1u))
        }
        expect(e.errcode == 40001L) { "errcode ${e.errcode}" }
        expect(e.errmsg.isNotEmpty()) { "empty errmsg" }
    }
    check("an unreachable gateway raises WxPayException.Network") {
        val down = WxPayClient(config.copy(apiBase = "http://127.0.0.1:1", timeoutMs = 2000uL))
        expectThrows<WxPayException.Network> { down.buildPayParams(order("KT-NET-1", totalFee = 1u)) }
    }
    check("one client is shared by 4 threads") {
        val pool = Executors.newFixedThreadPool(4)
        try {
            val results = (1..4).map { i ->
                pool.submit(Callable { client.buildPayParams(order("KT-THREAD-$i", totalFee = i.toUInt())) })
            }.map { it.get(30, TimeUnit.SECONDS) }
            results.forEachIndexed { i, p -> checkPayParams(p, "KT-THREAD-${i + 1}", (i + 1).toUInt()) }
            expect(results.map { it.prepayid }.toSet().size == 4) { "prepayids not distinct" }
        } finally {
            pool.shutdown()
        }
    }
    check("sign() gives the public package vector; an unknown scheme raises InvalidArgument") {
        val params = mapOf(
            "bank_type" to "WX", "body" to "支付测试", "fee_type" to "1",
            "input_charset" to "UTF-8", "notify_url" to "http://weixin.qq.com",
            "out_trade_no" to "7240b65810859cbf2a8d9f76a638c0a3", "partner" to "1900000109",
            "spbill_create_ip" to "196.168.1.1", "total_fee" to "1",
        )
        val signature = sign("legacy-package", "8934e7d15453e97507ef794cf7b0519d", params)
        expect(signature == "7F77B507B755B3262884291517E380F8") { "signature $signature" }
        expectThrows<WxPayException.InvalidArgument> { sign("md5", "k", params) }
    }

    val v2Json = parseFlatJson(URI("$base/sandbox/config?api=v2").toURL().readText())
    val v2Config = v2ConfigFrom(v2Json)
    val v2 = WxPayClient(v2Config)
    fun byNo(no: String) = OrderRef.OutTradeNo(no)

    check("v2: build_pay_params returns MD5-signed parameters for merchant 10000100") {
        expect(v2Json["api"] == "v2" && v2Json["sign_type"] == "MD5") { "sandbox v2 config $v2Json" }
        val p = v2.buildPayParams(order("KT-V2-PAY-1", totalYuan = "19.99"))
        expect(p.partnerid == "10000100") { "partnerid ${p.partnerid}" }
        expect(Regex("[0-9A-F]{32}").matches(p.sign)) { "sign ${p.sign}" }
        expect(p.`package` == "Sign=WXPay") { "package ${p.`package`}" }
        expect(p.prepayid.isNotEmpty()) { "empty prepayid" }
        expect(p.outTradeNo == "KT-V2-PAY-1" && p.totalFee == 1999u) { "order ${p.outTradeNo} ${p.totalFee}" }
    }
    check("v2: query_order gives TradeState.Notpay; after close_order, TradeState.Closed") {
        v2.buildPayParams(order("KT-V2-CLOSE-1", totalFee = 5u))
        val unpaid = v2.queryOrder(byNo("KT-V2-CLOSE-1"))
        expect(unpaid.tradeState == TradeState.Notpay) { "trade state ${unpaid.tradeState}" }
        expect(unpaid.outTradeNo == "KT-V2-CLOSE-1") { "out_trade_no ${unpaid.outTradeNo}" }
        expect(unpaid.totalFee == 5u) { "total_fee ${unpaid.totalFee}" }
        expect(unpaid.transactionId == null) { "transaction_id ${unpaid.transactionId}" }
        v2.closeOrder("KT-V2-CLOSE-1")
        val closed = v2.queryOrder(byNo("KT-V2-CLOSE-1"))
        expect(closed.tradeState == TradeState.Closed) { "trade state ${closed.tradeState}" }
    }
    check("v2: a refund of an unpaid order raises WxPayException.Rejected with TRADE_STATE_ERROR") {
        v2.buildPayParams(order("KT-V2-REFUND-1", totalFee = 10u))
        val e = expectThrows<WxPayException.Rejected> {
            v2.refund(RefundRequest(order = byNo("KT-V2-REFUND-1"), outRefundNo = "KT-R-1", totalFee = 10u, refundFee = 5u))
        }
        expect(e.code == "TRADE_STATE_ERROR") { "code ${e.code}" }
        expect(e.description.isNotEmpty()) { "empty description" }
        expect(e.detail.contains("TRADE_STATE_ERROR")) { "detail ${e.detail}" }
    }
    check("v2: an unknown transaction id raises WxPayException.Rejected with ORDERNOTEXIST") {
        val e = expectThrows<WxPayException.Rejected> { v2.queryOrder(OrderRef.TransactionId("4200000000000000000000000000")) }
        expect(e.code == "ORDERNOTEXIST") { "code ${e.code}" }
    }
    check("v2: a config without api_key raises InvalidConfig naming api_key") {
        val e = expectThrows<WxPayException.InvalidConfig> { WxPayClient(v2Config.copy(apiKey = null)) }
        expect(e.field == "api_key") { "field ${e.field}" }
    }
    check("v2: a 2014-flow client refuses v2 operations with InvalidArgument") {
        expectThrows<WxPayException.InvalidArgument> { client.queryOrder(byNo("KT-V2-CLOSE-1")) }
    }
    check("v2: notification replies are the v2 XML") {
        expect(v2.notificationSuccessReply().contains("SUCCESS")) { "success reply" }
        val fail = v2.notificationFailureReply("busy")
        expect(fail.contains("FAIL") && fail.contains("busy")) { "failure reply $fail" }
    }
    v2.close()

    // API v3, public-key mode: RSA-signed requests and answers.
    val v3Json = parseFlatJson(URI("$base/sandbox/config?api=v3").toURL().readText())
    val v3Config = v3ConfigFrom(v3Json)
    val v3 = WxPayClient(v3Config)
    check("v3: build_pay_params returns RSA-signed (base64) parameters for mchid 1900000109") {
        val p = v3.buildPayParams(order("KT-V3-PAY-1", totalFee = 2999u))
        expect(p.partnerid == "1900000109") { "partnerid ${p.partnerid}" }
        expect(p.`package` == "Sign=WXPay") { "package ${p.`package`}" }
        expect(java.util.Base64.getDecoder().decode(p.sign).size == 256) { "sign ${p.sign}" }
        expect(p.prepayid.isNotEmpty()) { "empty prepayid" }
    }
    check("v3: query_order gives TradeState.Notpay; after close_order, TradeState.Closed") {
        v3.buildPayParams(order("KT-V3-CLOSE-1", totalFee = 5u))
        val unpaid = v3.queryOrder(byNo("KT-V3-CLOSE-1"))
        expect(unpaid.tradeState == TradeState.Notpay) { "trade state ${unpaid.tradeState}" }
        v3.closeOrder("KT-V3-CLOSE-1")
        val closed = v3.queryOrder(byNo("KT-V3-CLOSE-1"))
        expect(closed.tradeState == TradeState.Closed) { "trade state ${closed.tradeState}" }
    }
    check("v3: an unknown order raises WxPayException.Rejected with ORDER_NOT_EXIST and HTTP 404") {
        val e = expectThrows<WxPayException.Rejected> { v3.queryOrder(byNo("KT-V3-NONE")) }
        expect(e.code == "ORDER_NOT_EXIST") { "code ${e.code}" }
        expect(e.httpStatus == 404.toUShort()) { "http_status ${e.httpStatus}" }
    }
    check("v3: a notification without its Wechatpay-* headers raises InvalidNotification") {
        expectThrows<WxPayException.InvalidNotification> {
            v3.verifySignedNotification(mapOf("Content-Type" to "application/json"), "{}".toByteArray(), null)
        }
        expect(v3.notificationSuccessReply() == "") { "v3 success reply" }
    }
    v3.close()
    client.close()

    println("kotlin: $passed passed, $failed failed")
    exitProcess(if (failed == 0) 0 else 1)
}
