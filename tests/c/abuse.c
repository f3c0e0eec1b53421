/*
 * abuse.c: every function of libwxpay called with what a careless or hostile
 * caller passes: NULLs, invalid UTF-8, broken JSON, wrong types, 16 MiB
 * strings, bad amounts. Each call must return the documented non-zero code,
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
    wxpay_client_free(client);

    check_sign();
    if (argc > 1) {
        check_gateway_error(argv[1]);
    }
    printf("abuse: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
