/*
 * lifecycle.c: an API v2 order from creation to refund, with libwxpay used
 * the way a C merchant server uses it, notification endpoint included.
 *
 *     lifecycle BASE_URL [SIGN_TYPE]
 *
 * BASE_URL is a sandbox on loopback (`wxpay sandbox --port 0` prints it:
 * http://127.0.0.1:PORT); SIGN_TYPE is the sandbox's signing algorithm,
 * "MD5" (the default) or "HMAC-SHA256". The program listens on a loopback
 * port of its own, which it gives as the merchant's notify_url, and then:
 *
 *   1. creates an order (wxpay_build_pay_params) and queries it: NOTPAY;
 *   2. asks the sandbox to simulate the user paying (POST /sandbox/pay);
 *   3. receives the payment notification the sandbox POSTs to notify_url,
 *      verifies it (wxpay_verify_payment_notification) and answers with the
 *      reply libwxpay gives; the same body with a wrong expected amount, and
 *      a tampered copy, are refused with a failure reply;
 *   4. queries the order by its transaction_id: SUCCESS;
 *   5. refunds part of it (wxpay_refund), receives and verifies the refund
 *      notification (wxpay_verify_refund_notification), lists the refunds
 *      (wxpay_query_refunds), and is refused a refund of more than is left;
 *   6. is refused closing the paid order (ORDERPAID), and closes a second,
 *      unpaid one (wxpay_close_order).
 *
 * Every notification the sandbox sends is answered as a merchant must: with
 * the reply of a successful verification, else with the failure reply of the
 * error document. Lines printed include "order NO", "transaction ID", and
 * last "lifecycle: N passed, N failed"; exit status 0 when none failed.
 * Everything allocated is freed (run it under valgrind or ASAN).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "sandbox_account.h"
#include "wxpay.h"

#define ORDER_FEE 1999
#define REFUND_FEE 999
/* How long to wait for a notification (valgrind makes everything slow). */
#define NOTIFY_WAIT_MS 60000
#define MAX_REQUEST_BYTES (1 << 20)

#include "test_support.h"

/* Waits up to `timeout_ms` for a request on `listener` and reads it whole.
 * Returns the connection (to answer on) and the body (malloc'ed, *body_len
 * bytes, not NUL-terminated), or -1. */
static int accept_request(int listener, int timeout_ms, char **body, size_t *body_len) {
    struct pollfd pfd = {listener, POLLIN, 0};
    int ready = poll(&pfd, 1, timeout_ms);
    if (ready <= 0) {
        return -1;
    }
    int conn = accept(listener, NULL, NULL);
    if (conn < 0) {
        return -1;
    }
    size_t cap = 8192;
    size_t got = 0;
    char *buf = malloc(cap + 1);
    size_t header_len = 0;
    size_t content_length = 0;
    if (buf == NULL || set_timeouts(conn, 30) != 0) {
        goto fail;
    }
    for (;;) {
        if (header_len != 0 && got >= header_len + content_length) {
            break;
        }
        if (got == cap) {
            if (cap >= MAX_REQUEST_BYTES) {
                goto fail;
            }
            char *bigger = realloc(buf, cap * 2 + 1);
            if (bigger == NULL) {
                goto fail;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = recv(conn, buf + got, cap - got, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            goto fail;
        }
        got += (size_t)n;
        buf[got] = '\0';
        if (header_len == 0) {
            char *end = strstr(buf, "\r\n\r\n");
            if (end == NULL) {
                continue;
            }
            header_len = (size_t)(end - buf) + 4;
            const char *line = buf;
            int found = 0;
            while ((line = strstr(line, "\r\n")) != NULL && line < end) {
                line += 2;
                if (strncasecmp(line, "content-length:", 15) == 0) {
                    content_length = strtoul(line + 15, NULL, 10);
                    found = 1;
                }
            }
            if (!found || content_length > MAX_REQUEST_BYTES) {
                goto fail;
            }
        }
    }
    *body_len = content_length;
    *body = malloc(content_length + 1);
    if (*body == NULL) {
        goto fail;
    }
    memcpy(*body, buf + header_len, content_length);
    (*body)[content_length] = '\0';
    free(buf);
    return conn;
fail:
    free(buf);
    close(conn);
    return -1;
}

/* Answers a request with `reply` and closes the connection. */
static void send_reply(int conn, const char *reply) {
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     strlen(reply));
    if (n > 0 && (size_t)n < sizeof head && write_all(conn, head, (size_t)n) == 0) {
        write_all(conn, reply, strlen(reply));
    }
    close(conn);
}

/* ------------------------------------------------------------ the notify_url handler */

enum kind { KIND_NONE, KIND_PAYMENT, KIND_REFUND };

struct notification {
    char *body;  /* the raw body, malloc'ed */
    size_t len;
    char *json;  /* the verified document, a libwxpay string */
};

/* Verifies one request's body as a payment, else as a refund notification,
 * and answers it with the reply libwxpay gives (success or failure). */
static enum kind handle_notification(const WxPayClient *client, int conn, const char *body,
                                     size_t len, char **verified) {
    char *json = NULL;
    char *error = NULL;
    enum kind kind = KIND_PAYMENT;
    int32_t rc = wxpay_verify_payment_notification(client, (const uint8_t *)body, len, ORDER_FEE,
                                                   &json, &error);
    if (rc != WXPAY_OK) {
        wxpay_string_free(error);
        error = NULL;
        kind = KIND_REFUND;
        rc = wxpay_verify_refund_notification(client, (const uint8_t *)body, len, REFUND_FEE, &json,
                                              &error);
    }
    if (rc != WXPAY_OK) {
        kind = KIND_NONE;
    }
    /* The reply: from the verified document, or from the error document. */
    char reply[4096];
    if (json_string(rc == WXPAY_OK ? json : error, "reply", reply, sizeof reply) != 0) {
        check("the verifier's document carries a reply", 0, rc == WXPAY_OK ? json : error);
        snprintf(reply, sizeof reply, "%s", "fail");
    }
    send_reply(conn, reply);
    if (kind == KIND_NONE) {
        fprintf(stderr, "lifecycle: refused a notification: %.300s\n", error ? error : "");
    }
    wxpay_string_free(error);
    *verified = json;
    return kind;
}

/* Serves notify_url until a notification of kind `want` verifies. */
static int serve_until(int listener, const WxPayClient *client, enum kind want,
                       struct notification *got) {
    long deadline = now_ms() + NOTIFY_WAIT_MS;
    for (;;) {
        long left = deadline - now_ms();
        if (left <= 0) {
            return -1;
        }
        char *body = NULL;
        size_t len = 0;
        int conn = accept_request(listener, (int)left, &body, &len);
        if (conn < 0) {
            return -1;
        }
        char *json = NULL;
        enum kind kind = handle_notification(client, conn, body, len, &json);
        if (kind == want) {
            got->body = body;
            got->len = len;
            got->json = json;
            return 0;
        }
        /* A retry of an earlier notification, answered above. */
        free(body);
        wxpay_string_free(json);
    }
}

static void notification_free(struct notification *n) {
    free(n->body);
    wxpay_string_free(n->json);
    n->body = NULL;
    n->json = NULL;
}

/* A copy of `n`'s body with the first `from` replaced by `to` (same length);
 * NULL when `from` is not in it. */
static char *tampered(const struct notification *n, const char *from, const char *to) {
    char *copy = malloc(n->len + 1);
    if (copy == NULL) {
        return NULL;
    }
    memcpy(copy, n->body, n->len + 1);
    char *at = strstr(copy, from);
    if (at == NULL || strlen(from) != strlen(to)) {
        free(copy);
        return NULL;
    }
    memcpy(at, to, strlen(to));
    return copy;
}

/* ------------------------------------------------------------ the life cycle */

static void payment_checks(const WxPayClient *client, const struct notification *paid,
                           const char *no) {
    char needle[128];
    snprintf(needle, sizeof needle, "\"out_trade_no\":\"%s\"", no);
    const char *const wanted[] = {"\"paid\":true", "\"total_fee\":1999", needle, NULL};
    for (const char *const *w = wanted; *w != NULL; w++) {
        check("the payment notification's content", strstr(paid->json, *w) != NULL, paid->json);
    }

    /* The reply in the document is the success reply. */
    char reply[1024];
    char *success = NULL;
    int32_t rc = wxpay_notification_success_reply(client, &success, NULL);
    check("wxpay_notification_success_reply",
          rc == WXPAY_OK && json_string(paid->json, "reply", reply, sizeof reply) == 0 &&
              strcmp(reply, success) == 0 && strstr(success, "SUCCESS") != NULL,
          success);
    wxpay_string_free(success);

    /* The same body, verified again, still verifies (WeChat repeats them). */
    char *json = NULL;
    char *error = NULL;
    rc = wxpay_verify_payment_notification(client, (const uint8_t *)paid->body, paid->len, 0,
                                           &json, &error);
    wxpay_string_free(expect_ok("the same payment notification again, amount unchecked", rc, json,
                                error, NULL));

    /* The order was for 19.99; a merchant expecting 19.98 must refuse it. */
    json = NULL;
    error = NULL;
    rc = wxpay_verify_payment_notification(client, (const uint8_t *)paid->body, paid->len,
                                           ORDER_FEE - 1, &json, &error);
    expect_failure("a payment notification of another amount", rc, WXPAY_ERR_INVALID_NOTIFICATION,
                   json == NULL, error, "\"reply\":\"<xml><return_code><![CDATA[FAIL]]>");

    /* A forged amount breaks the signature. */
    char *forged = tampered(paid, ">1999<", ">2999<");
    if (forged == NULL) {
        forged = tampered(paid, "[1999]", "[2999]");
    }
    check("the payment notification carries total_fee 1999", forged != NULL, paid->body);
    if (forged != NULL) {
        json = NULL;
        error = NULL;
        rc = wxpay_verify_payment_notification(client, (const uint8_t *)forged, paid->len, 0, &json,
                                               &error);
        expect_failure("a tampered payment notification", rc, WXPAY_ERR_INVALID_NOTIFICATION,
                       json == NULL, error, "signature");
        free(forged);
    }
}

static void refund_checks(const WxPayClient *client, const struct notification *refunded,
                          const char *refund_no) {
    char needle[128];
    snprintf(needle, sizeof needle, "\"out_refund_no\":\"%s\"", refund_no);
    const char *const wanted[] = {"\"refund_fee\":999", "\"total_fee\":1999", needle, NULL};
    for (const char *const *w = wanted; *w != NULL; w++) {
        check("the refund notification's content", strstr(refunded->json, *w) != NULL,
              refunded->json);
    }
    char *json = NULL;
    char *error = NULL;
    int32_t rc = wxpay_verify_refund_notification(client, (const uint8_t *)refunded->body,
                                                  refunded->len, REFUND_FEE + 1, &json, &error);
    expect_failure("a refund notification of another amount", rc, WXPAY_ERR_INVALID_NOTIFICATION,
                   json == NULL, error, "\"reply\":\"<xml>");
    /* Another merchant's. */
    char *forged = tampered(refunded, SANDBOX_MCH_ID, "10000101");
    check("the refund notification names the merchant", forged != NULL, refunded->body);
    if (forged != NULL) {
        json = NULL;
        error = NULL;
        rc = wxpay_verify_refund_notification(client, (const uint8_t *)forged, refunded->len, 0,
                                              &json, &error);
        expect_failure("a refund notification for another merchant", rc,
                       WXPAY_ERR_INVALID_NOTIFICATION, json == NULL, error, "mch_id");
        free(forged);
    }
}

static void run(const WxPayClient *client, int listener, int sandbox_port) {
    char no[48];
    char refund_no[64];
    char query[256];
    char *json = NULL;
    char *error = NULL;
    int32_t rc;
    snprintf(no, sizeof no, "LC%ldT%ld", (long)getpid(), (long)time(NULL) % 100000);
    snprintf(refund_no, sizeof refund_no, "R%s", no);
    printf("order %s\n", no);

    /* 1. The order, unpaid. */
    char order[512];
    snprintf(order, sizeof order,
             "{\"out_trade_no\":\"%s\",\"total_fee\":%d,"
             "\"body\":\"C \xe6\x94\xaf\xe4\xbb\x98\xe6\xb5\x8b\xe8\xaf\x95\","
             "\"client_ip\":\"196.168.1.1\"}",
             no, ORDER_FEE);
    rc = wxpay_build_pay_params(client, order, &json, &error);
    const char *const params_needles[] = {"\"prepayid\":\"wx",
                                          "\"partnerid\":\"" SANDBOX_MCH_ID "\"", NULL};
    char *params = expect_ok("wxpay_build_pay_params (v2)", rc, json, error, params_needles);
    if (params == NULL) {
        return;
    }
    printf("params %s\n", params);
    wxpay_string_free(params);

    snprintf(query, sizeof query, "{\"out_trade_no\":\"%s\"}", no);
    json = NULL;
    error = NULL;
    rc = wxpay_query_order(client, query, &json, &error);
    const char *const notpay[] = {"\"trade_state\":\"NOTPAY\"", NULL};
    wxpay_string_free(expect_ok("wxpay_query_order before payment", rc, json, error, notpay));

    /* 2. The user pays; 3. the sandbox notifies notify_url. */
    char pay[128];
    snprintf(pay, sizeof pay, "{\"out_trade_no\":\"%s\"}", no);
    int status = post_json(sandbox_port, "/sandbox/pay", pay);
    char detail[64];
    snprintf(detail, sizeof detail, "HTTP %d", status);
    check("POST /sandbox/pay", status == 204, detail);
    if (status != 204) {
        return;
    }
    struct notification paid = {NULL, 0, NULL};
    if (serve_until(listener, client, KIND_PAYMENT, &paid) != 0) {
        check("a payment notification arrives and verifies", 0, NULL);
        return;
    }
    check("a payment notification arrives and verifies", 1, NULL);
    payment_checks(client, &paid, no);
    char transaction_id[128];
    int have_id = json_string(paid.json, "transaction_id", transaction_id, sizeof transaction_id);
    notification_free(&paid);
    check("the notification carries a transaction_id", have_id == 0, NULL);
    if (have_id != 0) {
        return;
    }
    printf("transaction %s\n", transaction_id);

    /* 4. The order, paid, by its transaction_id. */
    char by_id[256];
    snprintf(by_id, sizeof by_id, "{\"transaction_id\":\"%s\"}", transaction_id);
    json = NULL;
    error = NULL;
    rc = wxpay_query_order(client, by_id, &json, &error);
    const char *const success[] = {"\"trade_state\":\"SUCCESS\"", "\"total_fee\":1999", NULL};
    wxpay_string_free(expect_ok("wxpay_query_order after payment", rc, json, error, success));

    /* 5. A partial refund, its notification, the list of refunds. */
    char refund[512];
    snprintf(refund, sizeof refund,
             "{\"out_trade_no\":\"%s\",\"out_refund_no\":\"%s\",\"total_fee\":%d,"
             "\"refund_fee\":%d,\"refund_desc\":\"\xe9\x80\x80\xe4\xb8\x80\xe5\x8d\x8a\"}",
             no, refund_no, ORDER_FEE, REFUND_FEE);
    json = NULL;
    error = NULL;
    rc = wxpay_refund(client, refund, &json, &error);
    const char *const receipt_needles[] = {"\"refund_fee\":999", "\"refund_id\":\"", NULL};
    char *receipt = expect_ok("wxpay_refund", rc, json, error, receipt_needles);
    if (receipt == NULL) {
        return;
    }
    printf("refund %s\n", receipt);
    wxpay_string_free(receipt);

    struct notification refunded = {NULL, 0, NULL};
    if (serve_until(listener, client, KIND_REFUND, &refunded) != 0) {
        check("a refund notification arrives and verifies", 0, NULL);
        return;
    }
    check("a refund notification arrives and verifies", 1, NULL);
    refund_checks(client, &refunded, refund_no);
    notification_free(&refunded);

    json = NULL;
    error = NULL;
    rc = wxpay_query_refunds(client, query, &json, &error);
    char listed[128];
    snprintf(listed, sizeof listed, "[{\"out_refund_no\":\"%s\"", refund_no);
    const char *const refunds_needles[] = {listed, "\"refund_fee\":999", NULL};
    char *refunds = expect_ok("wxpay_query_refunds", rc, json, error, refunds_needles);
    if (refunds != NULL) {
        printf("refunds %s\n", refunds);
        wxpay_string_free(refunds);
    }

    json = NULL;
    error = NULL;
    rc = wxpay_query_order(client, query, &json, &error);
    const char *const refund_state[] = {"\"trade_state\":\"REFUND\"", NULL};
    wxpay_string_free(expect_ok("wxpay_query_order after the refund", rc, json, error,
                                refund_state));

    /* 1000 fen are left: 1001 more is refused with the gateway's code. */
    snprintf(refund, sizeof refund,
             "{\"out_trade_no\":\"%s\",\"out_refund_no\":\"%s2\",\"total_fee\":%d,"
             "\"refund_fee\":1001}",
             no, refund_no, ORDER_FEE);
    json = NULL;
    error = NULL;
    rc = wxpay_refund(client, refund, &json, &error);
    expect_failure("wxpay_refund of more than is left", rc, WXPAY_ERR_REJECTED, json == NULL, error,
                   "\"gateway_code\":\"NOTENOUGH\"");

    /* 6. Closing: refused for the paid order, done for an unpaid one. */
    error = NULL;
    rc = wxpay_close_order(client, no, &error);
    expect_failure("wxpay_close_order of a paid order", rc, WXPAY_ERR_REJECTED, 1, error,
                   "\"gateway_code\":\"ORDERPAID\"");

    char unpaid[64];
    snprintf(unpaid, sizeof unpaid, "%sU", no);
    snprintf(order, sizeof order,
             "{\"out_trade_no\":\"%s\",\"total_fee\":1,\"body\":\"b\",\"client_ip\":\"1.2.3.4\"}",
             unpaid);
    json = NULL;
    error = NULL;
    rc = wxpay_build_pay_params(client, order, &json, &error);
    wxpay_string_free(expect_ok("wxpay_build_pay_params (second order)", rc, json, error, NULL));
    error = NULL;
    rc = wxpay_close_order(client, unpaid, &error);
    check("wxpay_close_order of an unpaid order", rc == WXPAY_OK && error == NULL, error);
    wxpay_string_free(error);
    snprintf(query, sizeof query, "{\"out_trade_no\":\"%s\"}", unpaid);
    json = NULL;
    error = NULL;
    rc = wxpay_query_order(client, query, &json, &error);
    const char *const closed[] = {"\"trade_state\":\"CLOSED\"", NULL};
    wxpay_string_free(expect_ok("wxpay_query_order of the closed order", rc, json, error, closed));

    /* The failure reply a handler sends when it cannot record a notification. */
    char *reply = NULL;
    rc = wxpay_notification_failure_reply(client, "database busy", &reply, NULL);
    check("wxpay_notification_failure_reply",
          rc == WXPAY_OK && reply != NULL && strstr(reply, "FAIL") != NULL &&
              strstr(reply, "database busy") != NULL,
          reply);
    wxpay_string_free(reply);
}

int main(int argc, char **argv) {
    const char *base = argc > 1 ? argv[1] : getenv("WXPAY_SANDBOX_URL");
    const char *sign_type = argc > 2 ? argv[2] : "MD5";
    int sandbox_port = base ? loopback_port(base) : -1;
    if (sandbox_port < 0) {
        fprintf(stderr, "usage: lifecycle http://127.0.0.1:PORT [MD5|HMAC-SHA256]\n"
                        "       (a sandbox on loopback; or set WXPAY_SANDBOX_URL)\n");
        return 2;
    }
    int notify_port = 0;
    int listener = listen_loopback(&notify_port);
    if (listener < 0) {
        perror("lifecycle: cannot listen on loopback");
        return 1;
    }
    char notify_url[64];
    snprintf(notify_url, sizeof notify_url, "http://127.0.0.1:%d/notify", notify_port);
    char config[1024];
    if (sandbox_config_v2_json(config, sizeof config, base, notify_url, sign_type, 10000) != 0) {
        fprintf(stderr, "lifecycle: base URL too long\n");
        close(listener);
        return 2;
    }
    WxPayClient *client = NULL;
    char *error = NULL;
    int32_t rc = wxpay_client_new(config, &client, &error);
    if (rc != WXPAY_OK) {
        fprintf(stderr, "lifecycle: wxpay_client_new failed: %d (%s): %s\n", rc,
                wxpay_result_name(rc), error ? error : "");
        wxpay_string_free(error);
        close(listener);
        return 1;
    }
    run(client, listener, sandbox_port);
    wxpay_client_free(client);
    close(listener);
    printf("lifecycle: %d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
