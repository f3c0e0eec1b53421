/*
 * abuse.c: every function of libwxpay called with what a careless or hostile
 * caller passes: NULLs, invalid UTF-8, broken JSON, wrong types, duplicated
 * keys, 16 MiB strings, lengths past the end of a buffer, bad amounts,
 * hostile notification bodies, API v2 calls on a 2014-flow client. Each call
 * must return the documented non-zero code,
 * an error document naming that code and kind, NULL outputs, and no leak
 * (run it under valgrind or ASAN to see the last part).
 *
 *     abuse [BASE_URL]
 *
 * Without BASE_URL every check runs offline (the network check uses a closed
 * loopback port). With BASE_URL (a sandbox), the caller must first arm a
 * fault that makes the next genprepay answer errcode 45009 "quota": abuse
 * then checks that the gateway's errcode and errmsg reach C unchanged, and
 * that the next call succeeds.
 *
 * Exit status 0 when every check passed; the last line reads
 * "abuse: N passed, N failed".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox_account.h"
#include "wxpay.h"

static int passed;
static int failed;

/* A pointer value no library call may leave in an output on failure. */
#define SENTINEL ((void *)(uintptr_t)0x1)

static void fail(const char *what, const char *detail) {
    failed++;
    fprintf(stderr, "FAIL %s: %s\n", what, detail);
}

/* Checks a failed call: code `want`, output `out` NULL, and an error document
 * (when `error` was asked for) carrying the code, its kind and, when given,
 * `needle`. Frees the document. */
static void expect_failure(const char *what, int32_t got, int32_t want, const void *out,
                           char *error, int asked_error, const char *needle) {
    char detail[512];
    int ok = 1;
    if (got != want) {
        snprintf(detail, sizeof detail, "returned %d (%s), expected %d (%s)", got,
                 wxpay_result_name(got), want, wxpay_result_name(want));
        fail(what, detail);
        ok = 0;
    }
    if (out != NULL) {
        fail(what, "the output pointer is not NULL after a failure");
        ok = 0;
    }
    if (asked_error) {
        char code[64];
        char kind[96];
        snprintf(code, sizeof code, "\"code\":%d", want);
        snprintf(kind, sizeof kind, "\"kind\":\"%s\"", wxpay_result_name(want));
        if (error == NULL || error == SENTINEL) {
            fail(what, "no error document");
            ok = 0;
            error = NULL;
        } else if (strstr(error, code) == NULL || strstr(error, kind) == NULL ||
                   strstr(error, "\"message\":\"") == NULL) {
            snprintf(detail, sizeof detail, "error document lacks %s or %s: %.300s", code, kind,
                     error);
            fail(what, detail);
            ok = 0;
        } else if (needle != NULL && strstr(error, needle) == NULL) {
            snprintf(detail, sizeof detail, "error document lacks %s: %.300s", needle, error);
            fail(what, detail);
            ok = 0;
        }
        wxpay_string_free(error);
    }
    if (ok) {
        passed++;
    }
}

static void expect_true(const char *what, int condition) {
    if (condition) {
        passed++;
    } else {
        fail(what, "condition is false");
    }
}

/* A NUL-terminated string of `len` bytes: `prefix` then 'a's. */
static char *huge_string(size_t len, const char *prefix) {
    char *s = malloc(len + 1);
    if (s == NULL) {
        fprintf(stderr, "abuse: out of memory\n");
        exit(2);
    }
    memset(s, 'a', len);
    memcpy(s, prefix, strlen(prefix));
    s[len] = '\0';
    return s;
}

static const char *const GOOD_ORDER =
    "{\"out_trade_no\":\"ABUSE1\",\"total_fee\":1,\"body\":\"b\",\"client_ip\":\"1.2.3.4\"}";

static void check_static_strings(void) {
    const char *v = wxpay_version();
    expect_true("wxpay_version is a non-empty string", v != NULL && v[0] != '\0');
    expect_true("result name of WXPAY_OK", strcmp(wxpay_result_name(WXPAY_OK), "ok") == 0);
    expect_true("result name of WXPAY_ERR_GATEWAY",
                strcmp(wxpay_result_name(WXPAY_ERR_GATEWAY), "gateway") == 0);
    expect_true("result name of an unknown code", strcmp(wxpay_result_name(-7), "unknown") == 0);
    expect_true("result name of INT32_MIN", strcmp(wxpay_result_name(INT32_MIN), "unknown") == 0);
    expect_true("result message of WXPAY_ERR_PANIC", wxpay_result_message(WXPAY_ERR_PANIC) != NULL);
    expect_true("result message of an unknown code",
                strcmp(wxpay_result_message(123456), "unknown result code") == 0);
    /* The NULL-tolerant frees. */
    wxpay_string_free(NULL);
    wxpay_client_free(NULL);
    passed++;
}

static void check_client_new(const char *config) {
    WxPayClient *client = SENTINEL;
    char *error = SENTINEL;
    int32_t rc;

    rc = wxpay_client_new(NULL, &client, &error);
    expect_failure("client_new(NULL config)", rc, WXPAY_ERR_NULL_ARGUMENT, client, error, 1,
                   "config_json");

    error = SENTINEL;
    rc = wxpay_client_new(config, NULL, &error);
    expect_failure("client_new(NULL out_client)", rc, WXPAY_ERR_NULL_ARGUMENT, NULL, error, 1,
                   "out_client");

    rc = wxpay_client_new(config, NULL, NULL);
    expect_failure("client_new(NULL out_client, NULL out_error)", rc, WXPAY_ERR_NULL_ARGUMENT,
                   NULL, NULL, 0, NULL);

    client = SENTINEL;
    rc = wxpay_client_new("{", &client, NULL);
    expect_failure("client_new without out_error", rc, WXPAY_ERR_INVALID_JSON, client, NULL, 0,
                   NULL);

    struct {
        const char *what;
        const char *json;
        int32_t want;
        const char *needle;
    } cases[] = {
        {"client_new(invalid UTF-8)", "{\"appid\":\"\xff\xfe\"}", WXPAY_ERR_INVALID_UTF8, NULL},
        {"client_new(lone continuation byte)", "\x80", WXPAY_ERR_INVALID_UTF8, NULL},
        {"client_new(empty string)", "", WXPAY_ERR_INVALID_JSON, NULL},
        {"client_new(broken JSON)", "{\"appid\":", WXPAY_ERR_INVALID_JSON, NULL},
        {"client_new(not JSON)", "appid=wx", WXPAY_ERR_INVALID_JSON, NULL},
        {"client_new(array)", "[]", WXPAY_ERR_INVALID_CONFIG, NULL},
        {"client_new(null)", "null", WXPAY_ERR_INVALID_CONFIG, NULL},
        {"client_new(empty object)", "{}", WXPAY_ERR_INVALID_CONFIG, NULL},
        {"client_new(appid is a number)", "{\"appid\":5}", WXPAY_ERR_INVALID_CONFIG, NULL},
        {"client_new(plain http to a public host)",
         "{\"appid\":\"wx1\",\"app_secret\":\"s\",\"app_key\":\"k\",\"partner_id\":\"1\","
         "\"partner_key\":\"p\",\"notify_url\":\"https://example.com/n\","
         "\"api_base\":\"http://example.com\"}",
         WXPAY_ERR_INVALID_CONFIG, "api_base"},
        {"client_new(empty secret)",
         "{\"appid\":\"wx1\",\"app_secret\":\"\",\"app_key\":\"k\",\"partner_id\":\"1\","
         "\"partner_key\":\"p\",\"notify_url\":\"https://example.com/n\"}",
         WXPAY_ERR_INVALID_CONFIG, "app_secret"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        client = SENTINEL;
        error = SENTINEL;
        rc = wxpay_client_new(cases[i].json, &client, &error);
        expect_failure(cases[i].what, rc, cases[i].want, client, error, 1, cases[i].needle);
    }

    /* 16 MiB: refused after reading at most WXPAY_MAX_INPUT_BYTES + 1 bytes. */
    char *huge = huge_string((size_t)16 << 20, "{\"appid\":\"");
    client = SENTINEL;
    error = SENTINEL;
    rc = wxpay_client_new(huge, &client, &error);
    expect_failure("client_new(16 MiB)", rc, WXPAY_ERR_INPUT_TOO_LONG, client, error, 1,
                   "config_json");
    free(huge);

    /* Exactly WXPAY_MAX_INPUT_BYTES is still accepted: a valid config padded
     * with spaces. */
    size_t len = strlen(config);
    char *padded = malloc(WXPAY_MAX_INPUT_BYTES + 1);
    if (padded == NULL) {
        exit(2);
    }
    memset(padded, ' ', WXPAY_MAX_INPUT_BYTES);
    memcpy(padded, config, len);
    padded[WXPAY_MAX_INPUT_BYTES] = '\0';
    client = NULL;
    error = SENTINEL;
    rc = wxpay_client_new(padded, &client, &error);
    expect_true("client_new(config padded to WXPAY_MAX_INPUT_BYTES) succeeds",
                rc == WXPAY_OK && client != NULL && error == NULL);
    wxpay_client_free(client);
    free(padded);
}

static void check_build_pay_params(const WxPayClient *client) {
    char *json = SENTINEL;
    char *error = SENTINEL;
    int32_t rc;

    rc = wxpay_build_pay_params(NULL, GOOD_ORDER, &json, &error);
    expect_failure("build(NULL client)", rc, WXPAY_ERR_NULL_ARGUMENT, json, error, 1, "client");

    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_build_pay_params(client, NULL, &json, &error);
    expect_failure("build(NULL order)", rc, WXPAY_ERR_NULL_ARGUMENT, json, error, 1,
                   "order_json");

    error = SENTINEL;
    rc = wxpay_build_pay_params(client, GOOD_ORDER, NULL, &error);
    expect_failure("build(NULL out_json)", rc, WXPAY_ERR_NULL_ARGUMENT, NULL, error, 1,
                   "out_json");

    rc = wxpay_build_pay_params(NULL, NULL, NULL, NULL);
    expect_failure("build(all NULL)", rc, WXPAY_ERR_NULL_ARGUMENT, NULL, NULL, 0, NULL);

#define ORDER(amount)                                                                              \
    "{\"out_trade_no\":\"ABUSE2\",\"body\":\"b\",\"client_ip\":\"1.2.3.4\"," amount "}"
    struct {
        const char *what;
        const char *json;
        int32_t want;
        const char *needle;
    } cases[] = {
        {"build(invalid UTF-8 body)",
         "{\"out_trade_no\":\"A\",\"total_fee\":1,\"body\":\"\xc3\x28\",\"client_ip\":\"1.2.3.4\"}",
         WXPAY_ERR_INVALID_UTF8, "order_json"},
        {"build(overlong UTF-8 encoding)", "{\"body\":\"\xc0\xaf\"}", WXPAY_ERR_INVALID_UTF8, NULL},
        {"build(broken JSON)", "{\"out_trade_no\":", WXPAY_ERR_INVALID_JSON, NULL},
        {"build(trailing garbage)", "{} x", WXPAY_ERR_INVALID_JSON, NULL},
        {"build(array)", "[1,2]", WXPAY_ERR_INVALID_ORDER, NULL},
        {"build(string)", "\"order\"", WXPAY_ERR_INVALID_ORDER, NULL},
        {"build(body is a number)",
         "{\"out_trade_no\":\"A\",\"total_fee\":1,\"body\":5,\"client_ip\":\"1.2.3.4\"}",
         WXPAY_ERR_INVALID_ORDER, "body"},
        {"build(IPv6 client_ip)",
         "{\"out_trade_no\":\"A\",\"total_fee\":1,\"body\":\"b\",\"client_ip\":\"::1\"}",
         WXPAY_ERR_INVALID_ORDER, "client_ip"},
        {"build(out_trade_no too long)",
         "{\"out_trade_no\":\"012345678901234567890123456789012\",\"total_fee\":1,\"body\":\"b\","
         "\"client_ip\":\"1.2.3.4\"}",
         WXPAY_ERR_INVALID_ORDER, "out_trade_no"},
        /* An unknown key with a NUL inside: the document must stay one C string. */
        {"build(unknown key with an escaped NUL)", ORDER("\"total_fee\":1,\"pri\\u0000ce\":1"),
         WXPAY_ERR_INVALID_ORDER, "\\u0000"},
        /* Bad amounts. */
        {"build(no amount)", ORDER("\"attach\":\"x\""), WXPAY_ERR_INVALID_ORDER, "total_fee"},
        {"build(total_fee 0)", ORDER("\"total_fee\":0"), WXPAY_ERR_INVALID_ORDER, "total_fee"},
        {"build(total_fee -1)", ORDER("\"total_fee\":-1"), WXPAY_ERR_INVALID_ORDER, "total_fee"},
        {"build(total_fee 1.5)", ORDER("\"total_fee\":1.5"), WXPAY_ERR_INVALID_ORDER, "total_fee"},
        {"build(total_fee 1e2)", ORDER("\"total_fee\":1e2"), WXPAY_ERR_INVALID_ORDER, "total_fee"},
        {"build(total_fee as a string)", ORDER("\"total_fee\":\"100\""), WXPAY_ERR_INVALID_ORDER,
         "total_fee"},
        {"build(total_fee 2^31)", ORDER("\"total_fee\":2147483648"), WXPAY_ERR_INVALID_ORDER,
         "total_fee"},
        {"build(total_fee 10^20)", ORDER("\"total_fee\":100000000000000000000"),
         WXPAY_ERR_INVALID_ORDER, "total_fee"},
        {"build(total_yuan 0.001)", ORDER("\"total_yuan\":\"0.001\""), WXPAY_ERR_INVALID_ORDER,
         "total_yuan"},
        {"build(total_yuan NaN)", ORDER("\"total_yuan\":\"NaN\""), WXPAY_ERR_INVALID_ORDER,
         "total_yuan"},
        {"build(total_yuan -1)", ORDER("\"total_yuan\":\"-1\""), WXPAY_ERR_INVALID_ORDER,
         "total_yuan"},
        {"build(total_yuan 0)", ORDER("\"total_yuan\":\"0\""), WXPAY_ERR_INVALID_ORDER,
         "total_yuan"},
        {"build(total_yuan empty)", ORDER("\"total_yuan\":\"\""), WXPAY_ERR_INVALID_ORDER,
         "total_yuan"},
        {"build(total_yuan 1e2)", ORDER("\"total_yuan\":\"1e2\""), WXPAY_ERR_INVALID_ORDER,
         "total_yuan"},
        {"build(total_yuan as a JSON number)", ORDER("\"total_yuan\":0.29"),
         WXPAY_ERR_INVALID_ORDER, "total_yuan"},
        {"build(total_yuan huge)", ORDER("\"total_yuan\":\"99999999999999999999.99\""),
         WXPAY_ERR_INVALID_ORDER, "total_yuan"},
        {"build(both amounts)", ORDER("\"total_fee\":1,\"total_yuan\":\"0.01\""),
         WXPAY_ERR_INVALID_ORDER, "total_fee"},
    };
#undef ORDER
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json = SENTINEL;
        error = SENTINEL;
        rc = wxpay_build_pay_params(client, cases[i].json, &json, &error);
        expect_failure(cases[i].what, rc, cases[i].want, json, error, 1, cases[i].needle);
    }

    char *huge = huge_string((size_t)16 << 20, "{\"body\":\"");
    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_build_pay_params(client, huge, &json, &error);
    expect_failure("build(16 MiB order)", rc, WXPAY_ERR_INPUT_TOO_LONG, json, error, 1,
                   "order_json");
    free(huge);

    /* A valid order, but nothing listens on the client's gateway port. */
    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_build_pay_params(client, GOOD_ORDER, &json, &error);
    expect_failure("build(gateway unreachable)", rc, WXPAY_ERR_NETWORK, json, error, 1,
                   "\"retryable\":true");
}

static void check_sign(void) {
    const char *params = "{\"appid\":\"wx1\",\"noncestr\":\"n\",\"timestamp\":1399514976}";
    char *sign = SENTINEL;
    char *error = SENTINEL;
    int32_t rc;

    rc = wxpay_sign("legacy-sha1", "K", params, &sign, &error);
    expect_true("sign(legacy-sha1) succeeds with a 40-char signature and NULL error",
                rc == WXPAY_OK && sign != NULL && strlen(sign) == 40 && error == NULL);
    if (rc == WXPAY_OK) {
        wxpay_string_free(sign);
    }

    struct {
        const char *what;
        const char *scheme;
        const char *key;
        const char *params;
        int32_t want;
        const char *needle;
    } cases[] = {
        {"sign(NULL scheme)", NULL, "K", params, WXPAY_ERR_NULL_ARGUMENT, "scheme"},
        {"sign(NULL key)", "legacy-sha1", NULL, params, WXPAY_ERR_NULL_ARGUMENT, "key"},
        {"sign(NULL params)", "legacy-sha1", "K", NULL, WXPAY_ERR_NULL_ARGUMENT, "params_json"},
        {"sign(unknown scheme)", "md5", "K", params, WXPAY_ERR_INVALID_ARGUMENT, "legacy-sha1"},
        {"sign(invalid UTF-8 scheme)", "legacy-\xff", "K", params, WXPAY_ERR_INVALID_UTF8,
         "scheme"},
        {"sign(invalid UTF-8 key)", "legacy-sha1", "\xe2\x82", params, WXPAY_ERR_INVALID_UTF8,
         "key"},
        {"sign(empty key)", "legacy-sha1", "", params, WXPAY_ERR_INVALID_ARGUMENT, "key"},
        {"sign(broken JSON)", "legacy-sha1", "K", "{\"a\":", WXPAY_ERR_INVALID_JSON, NULL},
        {"sign(array)", "legacy-sha1", "K", "[\"a\"]", WXPAY_ERR_INVALID_ARGUMENT, NULL},
        {"sign(float value)", "legacy-sha1", "K", "{\"a\":1.5}", WXPAY_ERR_INVALID_ARGUMENT, NULL},
        {"sign(nested value)", "legacy-sha1", "K", "{\"a\":{\"b\":\"c\"}}",
         WXPAY_ERR_INVALID_ARGUMENT, NULL},
        {"sign(appkey among the params)", "legacy-sha1", "K", "{\"appkey\":\"x\"}",
         WXPAY_ERR_INVALID_ARGUMENT, "appkey"},
        {"sign(bad input_charset)", "legacy-package", "K", "{\"input_charset\":\"latin1\"}",
         WXPAY_ERR_INVALID_ARGUMENT, "input_charset"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sign = SENTINEL;
        error = SENTINEL;
        rc = wxpay_sign(cases[i].scheme, cases[i].key, cases[i].params, &sign, &error);
        expect_failure(cases[i].what, rc, cases[i].want, sign, error, 1, cases[i].needle);
    }

    error = SENTINEL;
    rc = wxpay_sign("legacy-sha1", "K", params, NULL, &error);
    expect_failure("sign(NULL out_sign)", rc, WXPAY_ERR_NULL_ARGUMENT, NULL, error, 1, "out_sign");

    rc = wxpay_sign(NULL, NULL, NULL, NULL, NULL);
    expect_failure("sign(all NULL)", rc, WXPAY_ERR_NULL_ARGUMENT, NULL, NULL, 0, NULL);

    /* 16 MiB key and params. */
    char *huge = huge_string((size_t)16 << 20, "");
    sign = SENTINEL;
    error = SENTINEL;
    rc = wxpay_sign("legacy-sha1", huge, params, &sign, &error);
    expect_failure("sign(16 MiB key)", rc, WXPAY_ERR_INPUT_TOO_LONG, sign, error, 1, "key");
    sign = SENTINEL;
    error = SENTINEL;
    rc = wxpay_sign("legacy-sha1", "K", huge, &sign, &error);
    expect_failure("sign(16 MiB params)", rc, WXPAY_ERR_INPUT_TOO_LONG, sign, error, 1,
                   "params_json");
    sign = SENTINEL;
    error = SENTINEL;
    rc = wxpay_sign(huge, "K", params, &sign, &error);
    expect_failure("sign(16 MiB scheme)", rc, WXPAY_ERR_INPUT_TOO_LONG, sign, error, 1, "scheme");
    free(huge);
}

/* ------------------------------------------------------------ API v2 */

/* Like expect_failure, and the error document must not contain `absent`. */
static void expect_failure_lacking(const char *what, int32_t got, int32_t want, const void *out,
                                   char *error, const char *absent) {
    if (error != NULL && error != SENTINEL && strstr(error, absent) != NULL) {
        char detail[512];
        snprintf(detail, sizeof detail, "error document has %s: %.300s", absent, error);
        fail(what, detail);
    }
    expect_failure(what, got, want, out, error, 1, NULL);
}

/* The functions taking (client, const char *json, char **out_json, char **out_error). */
typedef int32_t (*json_call)(const WxPayClient *, const char *, char **, char **);

/* The functions taking (client, body, body_len, expected_fee, out_json, out_error). */
typedef int32_t (*verify_call)(const WxPayClient *, const uint8_t *, uint64_t, int64_t, char **,
                               char **);

static const char *const GOOD_REF = "{\"out_trade_no\":\"ABUSE1\"}";
static const char *const GOOD_REFUND =
    "{\"out_trade_no\":\"ABUSE1\",\"out_refund_no\":\"R1\",\"total_fee\":2,\"refund_fee\":1}";

struct json_case {
    const char *what;
    const char *json;
    int32_t want;
    const char *needle;
};

/* The NULL, size and network checks every JSON-taking v2 function shares,
 * then `cases`. `v2` is an offline API v2 client, `legacy` an offline 2014 one. */
static void check_json_call(const char *name, json_call call, const char *good,
                            const char *argument, const struct json_case *cases, size_t count,
                            const WxPayClient *v2, const WxPayClient *legacy) {
    char what[160];
    char *json;
    char *error;
    int32_t rc;

    json = SENTINEL;
    error = SENTINEL;
    rc = call(NULL, good, &json, &error);
    snprintf(what, sizeof what, "%s(NULL client)", name);
    expect_failure(what, rc, WXPAY_ERR_NULL_ARGUMENT, json, error, 1, "client");

    json = SENTINEL;
    error = SENTINEL;
    rc = call(v2, NULL, &json, &error);
    snprintf(what, sizeof what, "%s(NULL %s)", name, argument);
    expect_failure(what, rc, WXPAY_ERR_NULL_ARGUMENT, json, error, 1, argument);

    error = SENTINEL;
    rc = call(v2, good, NULL, &error);
    snprintf(what, sizeof what, "%s(NULL out_json)", name);
    expect_failure(what, rc, WXPAY_ERR_NULL_ARGUMENT, NULL, error, 1, "out_json");

    rc = call(NULL, NULL, NULL, NULL);
    snprintf(what, sizeof what, "%s(all NULL)", name);
    expect_failure(what, rc, WXPAY_ERR_NULL_ARGUMENT, NULL, NULL, 0, NULL);

    json = SENTINEL;
    rc = call(v2, "{", &json, NULL);
    snprintf(what, sizeof what, "%s(broken JSON, no out_error)", name);
    expect_failure(what, rc, WXPAY_ERR_INVALID_JSON, json, NULL, 0, NULL);

    for (size_t i = 0; i < count; i++) {
        json = SENTINEL;
        error = SENTINEL;
        rc = call(v2, cases[i].json, &json, &error);
        snprintf(what, sizeof what, "%s(%s)", name, cases[i].what);
        expect_failure(what, rc, cases[i].want, json, error, 1, cases[i].needle);
    }

    char *huge = huge_string((size_t)16 << 20, "{\"out_trade_no\":\"");
    json = SENTINEL;
    error = SENTINEL;
    rc = call(v2, huge, &json, &error);
    snprintf(what, sizeof what, "%s(16 MiB)", name);
    expect_failure(what, rc, WXPAY_ERR_INPUT_TOO_LONG, json, error, 1, argument);
    free(huge);

    /* Valid, but nothing listens on the gateway port. */
    json = SENTINEL;
    error = SENTINEL;
    rc = call(v2, good, &json, &error);
    snprintf(what, sizeof what, "%s(gateway unreachable)", name);
    expect_failure(what, rc, WXPAY_ERR_NETWORK, json, error, 1, "\"retryable\":true");

    /* A 2014-flow client has no API v2 operations. */
    json = SENTINEL;
    error = SENTINEL;
    rc = call(legacy, good, &json, &error);
    snprintf(what, sizeof what, "%s(legacy client)", name);
    expect_failure(what, rc, WXPAY_ERR_INVALID_ARGUMENT, json, error, 1, "API v2");
}

/* Order references, for wxpay_query_order and wxpay_query_refunds. */
static const struct json_case ORDER_REF_CASES[] = {
    {"invalid UTF-8", "{\"out_trade_no\":\"\xff\"}", WXPAY_ERR_INVALID_UTF8, "order_ref_json"},
    {"truncated UTF-8", "{\"out_trade_no\":\"\xe6\x94\"}", WXPAY_ERR_INVALID_UTF8, NULL},
    {"empty string", "", WXPAY_ERR_INVALID_JSON, NULL},
    {"broken JSON", "{\"out_trade_no\":", WXPAY_ERR_INVALID_JSON, NULL},
    {"broken array", "[1,", WXPAY_ERR_INVALID_JSON, NULL},
    {"trailing garbage", "{\"out_trade_no\":\"A\"} x", WXPAY_ERR_INVALID_JSON, NULL},
    {"array", "[\"ABUSE1\"]", WXPAY_ERR_INVALID_ARGUMENT, "JSON object"},
    {"null", "null", WXPAY_ERR_INVALID_ARGUMENT, NULL},
    {"bare string", "\"ABUSE1\"", WXPAY_ERR_INVALID_ARGUMENT, NULL},
    {"empty object", "{}", WXPAY_ERR_INVALID_ARGUMENT, "out_trade_no or transaction_id"},
    {"both keys", "{\"out_trade_no\":\"A\",\"transaction_id\":\"4200\"}",
     WXPAY_ERR_INVALID_ARGUMENT, "not both"},
    {"out_trade_no a number", "{\"out_trade_no\":5}", WXPAY_ERR_INVALID_ARGUMENT,
     "must be a string"},
    {"transaction_id an object", "{\"transaction_id\":{}}", WXPAY_ERR_INVALID_ARGUMENT,
     "transaction_id"},
    {"empty out_trade_no", "{\"out_trade_no\":\"\"}", WXPAY_ERR_INVALID_ARGUMENT,
     "characters of"},
    {"control character", "{\"out_trade_no\":\"A\\u0001\"}", WXPAY_ERR_INVALID_ARGUMENT,
     "characters of"},
    {"33 characters", "{\"out_trade_no\":\"012345678901234567890123456789012\"}",
     WXPAY_ERR_INVALID_ARGUMENT, "characters of"},
    {"serde's enum form", "{\"OutTradeNo\":\"A\"}", WXPAY_ERR_INVALID_ARGUMENT, "unknown key"},
    {"unknown key with an escaped NUL", "{\"out_trade_no\":\"A\",\"x\\u0000y\":1}",
     WXPAY_ERR_INVALID_ARGUMENT, "unknown key"},
    {"duplicated key", "{\"out_trade_no\":\"A\",\"out_trade_no\":\"B\"}",
     WXPAY_ERR_INVALID_ARGUMENT, "more than once"},
};

#define REFUND(fields) "{\"out_trade_no\":\"ABUSE1\"," fields "}"
#define AMOUNTS "\"total_fee\":2,\"refund_fee\":1"
static const struct json_case REFUND_CASES[] = {
    {"invalid UTF-8 refund_desc",
     REFUND("\"out_refund_no\":\"R1\"," AMOUNTS ",\"refund_desc\":\"\xc3\x28\""),
     WXPAY_ERR_INVALID_UTF8, "refund_json"},
    {"broken JSON", "{\"out_trade_no\":\"A\",", WXPAY_ERR_INVALID_JSON, NULL},
    {"array", "[1,2]", WXPAY_ERR_INVALID_ARGUMENT, NULL},
    {"no order", "{\"out_refund_no\":\"R1\"," AMOUNTS "}", WXPAY_ERR_INVALID_ARGUMENT,
     "out_trade_no or transaction_id"},
    {"both orders",
     "{\"out_trade_no\":\"A\",\"transaction_id\":\"4200\",\"out_refund_no\":\"R1\"," AMOUNTS "}",
     WXPAY_ERR_INVALID_ARGUMENT, "not both"},
    {"no out_refund_no", REFUND(AMOUNTS), WXPAY_ERR_INVALID_ARGUMENT, "out_refund_no"},
    {"out_refund_no a number", REFUND("\"out_refund_no\":1," AMOUNTS), WXPAY_ERR_INVALID_ARGUMENT,
     "out_refund_no"},
    {"out_refund_no with a space", REFUND("\"out_refund_no\":\"R 1\"," AMOUNTS),
     WXPAY_ERR_INVALID_ARGUMENT, "out_refund_no"},
    {"empty out_refund_no", REFUND("\"out_refund_no\":\"\"," AMOUNTS), WXPAY_ERR_INVALID_ARGUMENT,
     "out_refund_no"},
    {"no total_fee", REFUND("\"out_refund_no\":\"R1\",\"refund_fee\":1"),
     WXPAY_ERR_INVALID_ARGUMENT, "total_fee is missing"},
    {"no refund_fee", REFUND("\"out_refund_no\":\"R1\",\"total_fee\":1"),
     WXPAY_ERR_INVALID_ARGUMENT, "refund_fee is missing"},
    {"total_fee as a string",
     REFUND("\"out_refund_no\":\"R1\",\"total_fee\":\"2\",\"refund_fee\":1"),
     WXPAY_ERR_INVALID_ARGUMENT, "total_fee"},
    {"refund_fee 1.5", REFUND("\"out_refund_no\":\"R1\",\"total_fee\":2,\"refund_fee\":1.5"),
     WXPAY_ERR_INVALID_ARGUMENT, "refund_fee"},
    {"refund_fee 1e0", REFUND("\"out_refund_no\":\"R1\",\"total_fee\":2,\"refund_fee\":1e0"),
     WXPAY_ERR_INVALID_ARGUMENT, "refund_fee"},
    {"refund_fee 0", REFUND("\"out_refund_no\":\"R1\",\"total_fee\":2,\"refund_fee\":0"),
     WXPAY_ERR_INVALID_ARGUMENT, "refund_fee"},
    {"refund_fee -1", REFUND("\"out_refund_no\":\"R1\",\"total_fee\":2,\"refund_fee\":-1"),
     WXPAY_ERR_INVALID_ARGUMENT, "refund_fee"},
    {"total_fee 2^31",
     REFUND("\"out_refund_no\":\"R1\",\"total_fee\":2147483648,\"refund_fee\":1"),
     WXPAY_ERR_INVALID_ARGUMENT, "total_fee"},
    {"total_fee 10^20",
     REFUND("\"out_refund_no\":\"R1\",\"total_fee\":100000000000000000000,\"refund_fee\":1"),
     WXPAY_ERR_INVALID_ARGUMENT, "total_fee"},
    {"refund_fee above total_fee",
     REFUND("\"out_refund_no\":\"R1\",\"total_fee\":1,\"refund_fee\":2"),
     WXPAY_ERR_INVALID_ARGUMENT, "larger than total_fee"},
    {"duplicated refund_fee",
     REFUND("\"out_refund_no\":\"R1\",\"total_fee\":2,\"refund_fee\":1,\"refund_fee\":2000"),
     WXPAY_ERR_INVALID_ARGUMENT, "more than once"},
    {"refund_desc a number", REFUND("\"out_refund_no\":\"R1\"," AMOUNTS ",\"refund_desc\":1"),
     WXPAY_ERR_INVALID_ARGUMENT, "refund_desc"},
    {"unknown key", REFUND("\"out_refund_no\":\"R1\"," AMOUNTS ",\"amount\":1"),
     WXPAY_ERR_INVALID_ARGUMENT, "amount"},
};
#undef AMOUNTS
#undef REFUND

static void check_close_order(const WxPayClient *v2, const WxPayClient *legacy) {
    char *error = SENTINEL;
    int32_t rc = wxpay_close_order(NULL, "ABUSE1", &error);
    expect_failure("close_order(NULL client)", rc, WXPAY_ERR_NULL_ARGUMENT, NULL, error, 1,
                   "client");
    error = SENTINEL;
    rc = wxpay_close_order(v2, NULL, &error);
    expect_failure("close_order(NULL out_trade_no)", rc, WXPAY_ERR_NULL_ARGUMENT, NULL, error, 1,
                   "out_trade_no");
    rc = wxpay_close_order(NULL, NULL, NULL);
    expect_failure("close_order(all NULL)", rc, WXPAY_ERR_NULL_ARGUMENT, NULL, NULL, 0, NULL);

    struct {
        const char *what;
        const char *no;
        int32_t want;
        const char *needle;
    } cases[] = {
        {"close_order(invalid UTF-8)", "AB\xff", WXPAY_ERR_INVALID_UTF8, "out_trade_no"},
        {"close_order(empty)", "", WXPAY_ERR_INVALID_ARGUMENT, "out_trade_no"},
        {"close_order(a space)", "A B", WXPAY_ERR_INVALID_ARGUMENT, "characters of"},
        {"close_order(JSON instead of a number)", "{\"out_trade_no\":\"A\"}",
         WXPAY_ERR_INVALID_ARGUMENT, "characters of"},
        {"close_order(33 characters)", "012345678901234567890123456789012",
         WXPAY_ERR_INVALID_ARGUMENT, "characters of"},
        {"close_order(gateway unreachable)", "ABUSE1", WXPAY_ERR_NETWORK, "\"retryable\":true"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        error = SENTINEL;
        rc = wxpay_close_order(v2, cases[i].no, &error);
        expect_failure(cases[i].what, rc, cases[i].want, NULL, error, 1, cases[i].needle);
    }
    rc = wxpay_close_order(v2, "", NULL);
    expect_failure("close_order(empty, no out_error)", rc, WXPAY_ERR_INVALID_ARGUMENT, NULL, NULL,
                   0, NULL);

    char *huge = huge_string((size_t)16 << 20, "A");
    error = SENTINEL;
    rc = wxpay_close_order(v2, huge, &error);
    expect_failure("close_order(16 MiB)", rc, WXPAY_ERR_INPUT_TOO_LONG, NULL, error, 1,
                   "out_trade_no");
    free(huge);

    error = SENTINEL;
    rc = wxpay_close_order(legacy, "ABUSE1", &error);
    expect_failure("close_order(legacy client)", rc, WXPAY_ERR_INVALID_ARGUMENT, NULL, error, 1,
                   "API v2");
}

/* Writes into `buf` a payment notification for the sandbox's v2 merchant
 * claiming `claimed_fee`, signed (with wxpay_sign) for `signed_fee`. */
static int signed_notification(char *buf, size_t size, const char *signed_fee,
                               const char *claimed_fee) {
    char params[512];
    snprintf(params, sizeof params,
             "{\"appid\":\"" SANDBOX_APPID "\",\"mch_id\":\"" SANDBOX_MCH_ID "\","
             "\"nonce_str\":\"abuse\",\"out_trade_no\":\"ABUSE1\",\"result_code\":\"SUCCESS\","
             "\"return_code\":\"SUCCESS\",\"total_fee\":\"%s\",\"transaction_id\":\"4200000001\"}",
             signed_fee);
    char *sign = NULL;
    if (wxpay_sign("v2-md5", SANDBOX_API_KEY, params, &sign, NULL) != WXPAY_OK) {
        return -1;
    }
    int n = snprintf(buf, size,
                     "<xml><appid>" SANDBOX_APPID "</appid><mch_id>" SANDBOX_MCH_ID "</mch_id>"
                     "<nonce_str>abuse</nonce_str><out_trade_no>ABUSE1</out_trade_no>"
                     "<result_code>SUCCESS</result_code><return_code>SUCCESS</return_code>"
                     "<total_fee>%s</total_fee><transaction_id>4200000001</transaction_id>"
                     "<sign>%s</sign></xml>",
                     claimed_fee, sign);
    wxpay_string_free(sign);
    return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

#define BYTES(literal) (const uint8_t *)(literal), (uint64_t)(sizeof(literal) - 1)

static void check_verify_call(const char *name, verify_call call, const char *expected_name,
                              const WxPayClient *v2) {
    char what[160];
    char *json;
    char *error;
    int32_t rc;
    const char *reply = "\"reply\":\"<xml><return_code><![CDATA[FAIL]]>";

    json = SENTINEL;
    error = SENTINEL;
    rc = call(NULL, BYTES("<xml></xml>"), 0, &json, &error);
    snprintf(what, sizeof what, "%s(NULL client): no reply without a client", name);
    expect_failure_lacking(what, rc, WXPAY_ERR_NULL_ARGUMENT, json, error, "\"reply\"");

    json = SENTINEL;
    error = SENTINEL;
    rc = call(v2, NULL, 5, 0, &json, &error);
    snprintf(what, sizeof what, "%s(NULL body)", name);
    expect_failure(what, rc, WXPAY_ERR_NULL_ARGUMENT, json, error, 1, "body");
    json = SENTINEL;
    error = SENTINEL;
    rc = call(v2, NULL, 0, 0, &json, &error);
    snprintf(what, sizeof what, "%s(NULL body, length 0)", name);
    expect_failure(what, rc, WXPAY_ERR_NULL_ARGUMENT, json, error, 1, reply);

    error = SENTINEL;
    rc = call(v2, BYTES("<xml></xml>"), 0, NULL, &error);
    snprintf(what, sizeof what, "%s(NULL out_json)", name);
    expect_failure(what, rc, WXPAY_ERR_NULL_ARGUMENT, NULL, error, 1, "out_json");

    rc = call(NULL, NULL, 0, 0, NULL, NULL);
    snprintf(what, sizeof what, "%s(all NULL)", name);
    expect_failure(what, rc, WXPAY_ERR_NULL_ARGUMENT, NULL, NULL, 0, NULL);

    /* A length past the end of a 1-byte buffer: refused before any read
     * (ASAN and valgrind would see one). */
    static const uint8_t one[1] = {'<'};
    json = SENTINEL;
    error = SENTINEL;
    rc = call(v2, one, (uint64_t)WXPAY_MAX_INPUT_BYTES + 1, 0, &json, &error);
    snprintf(what, sizeof what, "%s(length WXPAY_MAX_INPUT_BYTES + 1)", name);
    expect_failure(what, rc, WXPAY_ERR_INPUT_TOO_LONG, json, error, 1, reply);
    json = SENTINEL;
    error = SENTINEL;
    rc = call(v2, one, UINT64_MAX, 0, &json, &error);
    snprintf(what, sizeof what, "%s(length UINT64_MAX)", name);
    expect_failure(what, rc, WXPAY_ERR_INPUT_TOO_LONG, json, error, 1, "body");

    struct {
        const char *what;
        const uint8_t *body;
        uint64_t len;
    } refused[] = {
        {"empty body", one, 0},
        {"invalid UTF-8", BYTES("<xml><a>\xff\xfe</a></xml>")},
        {"a NUL inside", BYTES("<xml><return_code>SUCCESS</return_code>\0<sign>x</sign></xml>")},
        {"not XML", BYTES("{\"return_code\":\"SUCCESS\"}")},
        {"unclosed XML", BYTES("<xml><return_code>SUCCESS")},
        {"a DOCTYPE (XXE)",
         BYTES("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
               "<xml><return_code>&e;</return_code></xml>")},
        {"unsigned",
         BYTES("<xml><return_code>SUCCESS</return_code><total_fee>1</total_fee></xml>")},
        {"return_code FAIL", BYTES("<xml><return_code>FAIL</return_code></xml>")},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        json = SENTINEL;
        error = SENTINEL;
        rc = call(v2, refused[i].body, refused[i].len, 0, &json, &error);
        snprintf(what, sizeof what, "%s(%s)", name, refused[i].what);
        expect_failure(what, rc, WXPAY_ERR_INVALID_NOTIFICATION, json, error, 1, reply);
    }

    /* Exactly WXPAY_MAX_INPUT_BYTES is read (and refused by the XML reader). */
    char *big = huge_string(WXPAY_MAX_INPUT_BYTES, "<xml><a>");
    json = SENTINEL;
    error = SENTINEL;
    rc = call(v2, (const uint8_t *)big, WXPAY_MAX_INPUT_BYTES, 0, &json, &error);
    snprintf(what, sizeof what, "%s(WXPAY_MAX_INPUT_BYTES body)", name);
    expect_failure(what, rc, WXPAY_ERR_INVALID_NOTIFICATION, json, error, 1, "larger than");
    free(big);
    char *huge = huge_string((size_t)16 << 20, "<xml><a>");
    json = SENTINEL;
    error = SENTINEL;
    rc = call(v2, (const uint8_t *)huge, (size_t)16 << 20, 0, &json, &error);
    snprintf(what, sizeof what, "%s(16 MiB body)", name);
    expect_failure(what, rc, WXPAY_ERR_INPUT_TOO_LONG, json, error, 1, reply);
    free(huge);

    /* Expected amounts: 0 and below are "not checked"; above 2^31-1 refused. */
    int64_t too_big[] = {(int64_t)INT32_MAX + 1, INT64_MAX};
    for (size_t i = 0; i < 2; i++) {
        json = SENTINEL;
        error = SENTINEL;
        rc = call(v2, BYTES("<xml></xml>"), too_big[i], &json, &error);
        snprintf(what, sizeof what, "%s(%s %lld)", name, expected_name, (long long)too_big[i]);
        expect_failure(what, rc, WXPAY_ERR_INVALID_ARGUMENT, json, error, 1, expected_name);
    }
    json = SENTINEL;
    error = SENTINEL;
    rc = call(v2, BYTES("<xml></xml>"), INT64_MIN, &json, &error);
    snprintf(what, sizeof what, "%s(%s INT64_MIN: not checked)", name, expected_name);
    expect_failure(what, rc, WXPAY_ERR_INVALID_NOTIFICATION, json, error, 1, reply);
}

static void check_notifications(const WxPayClient *v2, const WxPayClient *legacy) {
    check_verify_call("verify_payment_notification", wxpay_verify_payment_notification,
                      "expected_total_fee", v2);
    check_verify_call("verify_refund_notification", wxpay_verify_refund_notification,
                      "expected_refund_fee", v2);

    /* A notification signed with the merchant's key (wxpay_sign) verifies,
     * offline; the same claiming another amount does not. */
    char body[1024];
    char *json = NULL;
    char *error = SENTINEL;
    int32_t rc;
    if (signed_notification(body, sizeof body, "1", "1") != 0) {
        fail("signed notification", "could not build it");
        return;
    }
    rc = wxpay_verify_payment_notification(v2, (const uint8_t *)body, strlen(body), 1, &json,
                                           &error);
    expect_true("verify_payment_notification(signed with wxpay_sign) succeeds with NULL error",
                rc == WXPAY_OK && json != NULL && error == NULL &&
                    strstr(json, "\"paid\":true") != NULL &&
                    strstr(json, "\"reply\":\"<xml><return_code><![CDATA[SUCCESS]]>") != NULL);
    if (rc == WXPAY_OK) {
        wxpay_string_free(json);
    } else if (error != SENTINEL) {
        fprintf(stderr, "  error: %s\n", error ? error : "(none)");
        wxpay_string_free(error);
    }
    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_verify_payment_notification(v2, (const uint8_t *)body, strlen(body), 2, &json,
                                           &error);
    expect_failure("verify_payment_notification(expected 2 fen, claims 1)", rc,
                   WXPAY_ERR_INVALID_NOTIFICATION, json, error, 1, "expected 2");
    if (signed_notification(body, sizeof body, "1", "100") != 0) {
        fail("tampered notification", "could not build it");
        return;
    }
    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_verify_payment_notification(v2, (const uint8_t *)body, strlen(body), 0, &json,
                                           &error);
    expect_failure("verify_payment_notification(amount changed after signing)", rc,
                   WXPAY_ERR_INVALID_NOTIFICATION, json, error, 1, "signature");
    /* A refund verifier does not take a payment notification. */
    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_verify_refund_notification(v2, (const uint8_t *)body, strlen(body), 0, &json,
                                          &error);
    expect_failure("verify_refund_notification(a payment notification)", rc,
                   WXPAY_ERR_INVALID_NOTIFICATION, json, error, 1, "req_info");

    /* 2014-flow client: a query string, unsigned here; no refund notifications. */
    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_verify_payment_notification(legacy, BYTES("partner=1900000109&total_fee=1"), 0,
                                           &json, &error);
    expect_failure("verify_payment_notification(legacy, unsigned)", rc,
                   WXPAY_ERR_INVALID_NOTIFICATION, json, error, 1, "\"reply\":\"fail\"");
    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_verify_refund_notification(legacy, BYTES("<xml></xml>"), 0, &json, &error);
    expect_failure("verify_refund_notification(legacy client)", rc, WXPAY_ERR_INVALID_ARGUMENT,
                   json, error, 1, "\"reply\":\"fail\"");
}

static void check_replies(const WxPayClient *v2, const WxPayClient *legacy) {
    char *reply = SENTINEL;
    char *error = SENTINEL;
    int32_t rc = wxpay_notification_success_reply(NULL, &reply, &error);
    expect_failure("success_reply(NULL client)", rc, WXPAY_ERR_NULL_ARGUMENT, reply, error, 1,
                   "client");
    error = SENTINEL;
    rc = wxpay_notification_success_reply(v2, NULL, &error);
    expect_failure("success_reply(NULL out_reply)", rc, WXPAY_ERR_NULL_ARGUMENT, NULL, error, 1,
                   "out_reply");
    reply = SENTINEL;
    rc = wxpay_notification_success_reply(legacy, &reply, NULL);
    expect_true("success_reply(legacy) is \"success\"",
                rc == WXPAY_OK && reply != NULL && strcmp(reply, "success") == 0);
    if (rc == WXPAY_OK) {
        wxpay_string_free(reply);
    }

    reply = SENTINEL;
    error = SENTINEL;
    rc = wxpay_notification_failure_reply(v2, NULL, &reply, &error);
    expect_failure("failure_reply(NULL reason)", rc, WXPAY_ERR_NULL_ARGUMENT, reply, error, 1,
                   "reason");
    reply = SENTINEL;
    error = SENTINEL;
    rc = wxpay_notification_failure_reply(v2, "bad \xff", &reply, &error);
    expect_failure("failure_reply(invalid UTF-8 reason)", rc, WXPAY_ERR_INVALID_UTF8, reply, error,
                   1, "reason");
    char *huge = huge_string((size_t)16 << 20, "");
    reply = SENTINEL;
    error = SENTINEL;
    rc = wxpay_notification_failure_reply(v2, huge, &reply, &error);
    expect_failure("failure_reply(16 MiB reason)", rc, WXPAY_ERR_INPUT_TOO_LONG, reply, error, 1,
                   "reason");
    free(huge);
    rc = wxpay_notification_failure_reply(NULL, NULL, NULL, NULL);
    expect_failure("failure_reply(all NULL)", rc, WXPAY_ERR_NULL_ARGUMENT, NULL, NULL, 0, NULL);

    /* A reason that tries to close the CDATA section stays inside it. */
    reply = NULL;
    rc = wxpay_notification_failure_reply(v2, "x]]><return_code>SUCCESS</return_code>", &reply,
                                          NULL);
    expect_true("failure_reply keeps a hostile reason inside CDATA",
                rc == WXPAY_OK && reply != NULL &&
                    strncmp(reply, "<xml><return_code><![CDATA[FAIL]]></return_code>", 48) == 0 &&
                    strstr(reply, "]]]]><![CDATA[>") != NULL);
    wxpay_string_free(reply);
}

static void check_v2(const WxPayClient *v2, const WxPayClient *legacy) {
    check_json_call("query_order", wxpay_query_order, GOOD_REF, "order_ref_json", ORDER_REF_CASES,
                    sizeof ORDER_REF_CASES / sizeof ORDER_REF_CASES[0], v2, legacy);
    check_json_call("query_refunds", wxpay_query_refunds, GOOD_REF, "order_ref_json",
                    ORDER_REF_CASES, sizeof ORDER_REF_CASES / sizeof ORDER_REF_CASES[0], v2,
                    legacy);
    check_json_call("refund", wxpay_refund, GOOD_REFUND, "refund_json", REFUND_CASES,
                    sizeof REFUND_CASES / sizeof REFUND_CASES[0], v2, legacy);
    check_close_order(v2, legacy);
    check_notifications(v2, legacy);
    check_replies(v2, legacy);
}

/* ------------------------------------------------------------ API v3 */

/* Signed-looking headers whose signature cannot verify. */
static const char *const FORGED_HEADERS =
    "{\"Wechatpay-Serial\":\"" SANDBOX_V3_PUBLIC_KEY_ID "\",\"Wechatpay-Signature\":\"AAAA\","
    "\"Wechatpay-Timestamp\":\"1700000000\",\"Wechatpay-Nonce\":\"n1\","
    "\"Content-Type\":\"application/json\"}";
static const char *const V3_REPLY = "\"reply\":\"{\\\"code\\\":\\\"FAIL\\\"";

/* Like expect_failure, and the document carries the v3 failure reply, its
 * status 500, and `needle`. */
static void expect_v3_refusal(const char *what, int32_t got, int32_t want, const void *out,
                              char *error, const char *needle) {
    if (error == NULL || error == SENTINEL || strstr(error, V3_REPLY) == NULL ||
        strstr(error, "\"reply_status\":500") == NULL) {
        char detail[512];
        snprintf(detail, sizeof detail, "no v3 failure reply with status 500: %.300s",
                 error && error != SENTINEL ? error : "(none)");
        fail(what, detail);
    }
    expect_failure(what, got, want, out, error, 1, needle);
}

static void check_verify_signed(const WxPayClient *v3, const WxPayClient *v2,
                                const WxPayClient *legacy) {
    static const char body[] = "{\"id\":\"EV-1\",\"resource\":{}}";
    const uint8_t *b = (const uint8_t *)body;
    uint64_t len = sizeof body - 1;
    char *json;
    char *error;
    int32_t rc;

    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_verify_signed_notification(NULL, FORGED_HEADERS, b, len, 0, &json, &error);
    expect_failure_lacking("verify_signed(NULL client): no reply without a client", rc,
                           WXPAY_ERR_NULL_ARGUMENT, json, error, "\"reply\"");
    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_verify_signed_notification(v3, NULL, b, len, 0, &json, &error);
    expect_v3_refusal("verify_signed(NULL headers_json)", rc, WXPAY_ERR_NULL_ARGUMENT, json, error,
                      "headers_json");
    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_verify_signed_notification(v3, FORGED_HEADERS, NULL, 0, 0, &json, &error);
    expect_v3_refusal("verify_signed(NULL body)", rc, WXPAY_ERR_NULL_ARGUMENT, json, error,
                      "body");
    error = SENTINEL;
    rc = wxpay_verify_signed_notification(v3, FORGED_HEADERS, b, len, 0, NULL, &error);
    expect_v3_refusal("verify_signed(NULL out_json)", rc, WXPAY_ERR_NULL_ARGUMENT, NULL, error,
                      "out_json");
    rc = wxpay_verify_signed_notification(NULL, NULL, NULL, 0, 0, NULL, NULL);
    expect_failure("verify_signed(all NULL)", rc, WXPAY_ERR_NULL_ARGUMENT, NULL, NULL, 0, NULL);

    static const uint8_t one[1] = {'{'};
    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_verify_signed_notification(v3, FORGED_HEADERS, one,
                                          (uint64_t)WXPAY_MAX_INPUT_BYTES + 1, 0, &json, &error);
    expect_v3_refusal("verify_signed(length WXPAY_MAX_INPUT_BYTES + 1)", rc,
                      WXPAY_ERR_INPUT_TOO_LONG, json, error, "body");
    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_verify_signed_notification(v3, FORGED_HEADERS, one, UINT64_MAX, 0, &json, &error);
    expect_v3_refusal("verify_signed(length UINT64_MAX)", rc, WXPAY_ERR_INPUT_TOO_LONG, json,
                      error, "body");
    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_verify_signed_notification(v3, FORGED_HEADERS, b, len, (int64_t)INT32_MAX + 1,
                                          &json, &error);
    expect_v3_refusal("verify_signed(expected_total_fee 2^31)", rc, WXPAY_ERR_INVALID_ARGUMENT,
                      json, error, "expected_total_fee");

    char *huge = huge_string((size_t)16 << 20, "{\"a\":\"");
    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_verify_signed_notification(v3, huge, b, len, 0, &json, &error);
    expect_v3_refusal("verify_signed(16 MiB headers_json)", rc, WXPAY_ERR_INPUT_TOO_LONG, json,
                      error, "headers_json");
    free(huge);

    struct json_case cases[] = {
        {"headers not JSON", "{\"Wechatpay-Nonce\":", WXPAY_ERR_INVALID_JSON, "headers_json"},
        {"headers invalid UTF-8", "{\"Wechatpay-Nonce\":\"\xff\"}", WXPAY_ERR_INVALID_UTF8,
         "headers_json"},
        {"headers an array", "[[\"Wechatpay-Nonce\",\"n\"]]", WXPAY_ERR_INVALID_ARGUMENT,
         "headers_json"},
        {"headers a string", "\"Wechatpay-Nonce: n\"", WXPAY_ERR_INVALID_ARGUMENT,
         "headers_json"},
        {"a header value a number", "{\"Wechatpay-Timestamp\":1700000000}",
         WXPAY_ERR_INVALID_ARGUMENT, "must be a string"},
        {"a header value null", "{\"Wechatpay-Nonce\":null}", WXPAY_ERR_INVALID_ARGUMENT,
         "must be a string"},
        {"a header twice", "{\"Wechatpay-Nonce\":\"a\",\"Wechatpay-Nonce\":\"b\"}",
         WXPAY_ERR_INVALID_ARGUMENT, "more than once"},
        {"a header twice in two cases", "{\"Wechatpay-Nonce\":\"a\",\"WECHATPAY-NONCE\":\"b\"}",
         WXPAY_ERR_INVALID_ARGUMENT, "more than once"},
        {"no headers", "{}", WXPAY_ERR_INVALID_NOTIFICATION, "Wechatpay"},
        {"a Wechatpay-* header missing",
         "{\"Wechatpay-Serial\":\"s\",\"Wechatpay-Signature\":\"AAAA\","
         "\"Wechatpay-Timestamp\":\"1700000000\"}",
         WXPAY_ERR_INVALID_NOTIFICATION, "missing"},
        {"a forged signature", FORGED_HEADERS, WXPAY_ERR_INVALID_NOTIFICATION, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[160];
        snprintf(what, sizeof what, "verify_signed(%s)", cases[i].what);
        json = SENTINEL;
        error = SENTINEL;
        rc = wxpay_verify_signed_notification(v3, cases[i].json, b, len, 0, &json, &error);
        expect_v3_refusal(what, rc, cases[i].want, json, error, cases[i].needle);
    }

    /* Other generations: refused, with their own failure reply. */
    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_verify_signed_notification(v2, FORGED_HEADERS, b, len, 0, &json, &error);
    expect_failure_lacking("verify_signed(v2 client)", rc, WXPAY_ERR_INVALID_ARGUMENT, json, error,
                           "reply_status");
    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_verify_signed_notification(legacy, FORGED_HEADERS, b, len, 0, &json, &error);
    expect_failure("verify_signed(legacy client)", rc, WXPAY_ERR_INVALID_ARGUMENT, json, error, 1,
                   "\"reply\":\"fail\"");
    /* And the body-only verifier refuses a v3 client's notification. */
    json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_verify_payment_notification(v3, b, len, 0, &json, &error);
    expect_v3_refusal("verify_payment_notification(v3 client)", rc,
                      WXPAY_ERR_INVALID_NOTIFICATION, json, error, "verify_signed_notification");

    /* Replies: empty for success, JSON for failure. */
    char *reply = SENTINEL;
    rc = wxpay_notification_success_reply(v3, &reply, NULL);
    expect_true("success_reply(v3) is empty", rc == WXPAY_OK && reply != NULL && reply[0] == '\0');
    if (rc == WXPAY_OK) {
        wxpay_string_free(reply);
    }
    reply = NULL;
    rc = wxpay_notification_failure_reply(v3, "x\"}", &reply, NULL);
    expect_true("failure_reply(v3) escapes its reason",
                rc == WXPAY_OK && reply != NULL &&
                    strcmp(reply, "{\"code\":\"FAIL\",\"message\":\"x\\\"}\"}") == 0);
    wxpay_string_free(reply);
}

static void check_download_certificates(const WxPayClient *v3, const WxPayClient *v2) {
    int32_t count = 7;
    char *error = SENTINEL;
    int32_t rc = wxpay_download_certificates(NULL, &count, &error);
    expect_failure("download_certificates(NULL client)", rc, WXPAY_ERR_NULL_ARGUMENT, NULL, error,
                   1, "client");
    expect_true("download_certificates(NULL client) sets *out_count to 0", count == 0);
    error = SENTINEL;
    rc = wxpay_download_certificates(v3, NULL, &error);
    expect_failure("download_certificates(NULL out_count)", rc, WXPAY_ERR_NULL_ARGUMENT, NULL,
                   error, 1, "out_count");
    rc = wxpay_download_certificates(NULL, NULL, NULL);
    expect_failure("download_certificates(all NULL)", rc, WXPAY_ERR_NULL_ARGUMENT, NULL, NULL, 0,
                   NULL);
    count = 7;
    error = SENTINEL;
    rc = wxpay_download_certificates(v2, &count, &error);
    expect_failure("download_certificates(v2 client)", rc, WXPAY_ERR_INVALID_ARGUMENT, NULL, error,
                   1, "v3");
    expect_true("download_certificates(v2 client) sets *out_count to 0", count == 0);
    /* The v3 client's gateway is a closed port. */
    count = 7;
    error = SENTINEL;
    rc = wxpay_download_certificates(v3, &count, &error);
    expect_failure("download_certificates(unreachable gateway)", rc, WXPAY_ERR_NETWORK, NULL, error,
                   1, "\"retryable\":true");
    expect_true("download_certificates(unreachable) sets *out_count to 0", count == 0);
}

static void check_v3(const WxPayClient *v2, const WxPayClient *legacy) {
    char config[4096];
    WxPayClient *v3 = NULL;
    char *error = NULL;
    if (sandbox_config_v3_json(config, sizeof config, "http://127.0.0.1:1",
                               "https://example.com/notify", 5000) != 0 ||
        wxpay_client_new(config, &v3, &error) != WXPAY_OK) {
        fail("v3 client_new", error ? error : "the config does not fit");
        wxpay_string_free(error);
        return;
    }
    check_verify_signed(v3, v2, legacy);
    check_download_certificates(v3, v2);

    /* A gateway that cannot be reached: the v3 calls say so. */
    char *json = SENTINEL;
    error = SENTINEL;
    int32_t rc = wxpay_query_order(v3, GOOD_REF, &json, &error);
    expect_failure("query_order(v3, unreachable gateway)", rc, WXPAY_ERR_NETWORK, json, error, 1,
                   NULL);
    wxpay_client_free(v3);
}

/* Needs a sandbox with a genprepay fault armed: errcode 45009 "quota". */
static void check_gateway_error(const char *base) {
    char config[1024];
    if (sandbox_config_json(config, sizeof config, base, 10000) != 0) {
        fail("gateway config", "base URL too long");
        return;
    }
    WxPayClient *client = NULL;
    char *error = NULL;
    int32_t rc = wxpay_client_new(config, &client, &error);
    if (rc != WXPAY_OK) {
        fail("gateway client_new", error ? error : "failed");
        wxpay_string_free(error);
        return;
    }
    char order[256];
    snprintf(order, sizeof order,
             "{\"out_trade_no\":\"ABUSEGW%ld\",\"total_fee\":1,\"body\":\"b\","
             "\"client_ip\":\"1.2.3.4\"}",
             (long)getpid());
    char *json = SENTINEL;
    error = SENTINEL;
    rc = wxpay_build_pay_params(client, order, &json, &error);
    expect_failure("build(gateway answers errcode 45009)", rc, WXPAY_ERR_GATEWAY, json, error, 1,
                   "\"errcode\":45009,\"errmsg\":\"quota\"");

    /* The fault was for one call: the same order goes through now. */
    json = NULL;
    error = SENTINEL;
    rc = wxpay_build_pay_params(client, order, &json, &error);
    expect_true("build after the fault succeeds, with NULL error",
                rc == WXPAY_OK && json != NULL && error == NULL &&
                    strstr(json, "\"prepayid\":\"") != NULL);
    if (rc != WXPAY_OK && error != SENTINEL) {
        fprintf(stderr, "  error: %s\n", error ? error : "(none)");
        wxpay_string_free(error);
    }
    wxpay_string_free(json);
    wxpay_client_free(client);
}

int main(int argc, char **argv) {
    char config[1024];
    /* Port 1 on loopback: nothing listens there, so the connection is refused. */
    if (sandbox_config_json(config, sizeof config, "http://127.0.0.1:1", 5000) != 0) {
        return 2;
    }
    check_static_strings();
    check_client_new(config);

    WxPayClient *client = NULL;
    char *error = NULL;
    if (wxpay_client_new(config, &client, &error) != WXPAY_OK) {
        fprintf(stderr, "abuse: cannot create the offline client: %s\n", error ? error : "");
        wxpay_string_free(error);
        return 1;
    }
    check_build_pay_params(client);

    /* An API v2 client for the same closed port. */
    char config_v2[1024];
    WxPayClient *v2 = NULL;
    if (sandbox_config_v2_json(config_v2, sizeof config_v2, "http://127.0.0.1:1",
                               "https://example.com/notify", "MD5", 5000) != 0 ||
        wxpay_client_new(config_v2, &v2, &error) != WXPAY_OK) {
        fprintf(stderr, "abuse: cannot create the offline v2 client: %s\n", error ? error : "");
        wxpay_string_free(error);
        wxpay_client_free(client);
        return 1;
    }
    check_v2(v2, client);
    check_v3(v2, client);
    wxpay_client_free(v2);
    wxpay_client_free(client);

    check_sign();
    if (argc > 1) {
        check_gateway_error(argv[1]);
    }
    printf("abuse: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
