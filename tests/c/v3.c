/*
 * v3.c: an API v3 order from creation to refund through the C API, with the
 * merchant's notification endpoint verifying the real, signed notification.
 *
 *     v3 BASE_URL
 *
 * BASE_URL is a sandbox on loopback (`wxpay sandbox --port 0` prints it:
 * http://127.0.0.1:PORT), in public-key mode (the default) or certificate
 * mode (`--config` with `{"v3_certificate_mode": true}`). The program takes
 * the sandbox's v3 client configuration (GET /sandbox/config?api=v3), gives
 * it a notify_url on a loopback port of its own, and then:
 *
 *   1. in certificate mode, downloads the platform certificates
 *      (wxpay_download_certificates);
 *   2. creates an order (wxpay_build_pay_params: partnerid is the mchid, the
 *      sign a base64 RSA signature) and queries it: NOTPAY;
 *   3. asks the sandbox to simulate the user paying (POST /sandbox/pay),
 *      receives the notification on notify_url, verifies it with its
 *      Wechatpay-* headers (wxpay_verify_signed_notification) and answers
 *      with the status and body libwxpay gives; a tampered body, a forged
 *      signature header, a wrong amount and a header given twice are refused
 *      with the failure reply and status 500;
 *   4. queries the order by its transaction_id: SUCCESS; refunds part of it
 *      (wxpay_refund) and is refused more than is left (NOT_ENOUGH, with the
 *      HTTP status); is refused closing it (ORDER_PAID);
 *   5. closes a second, unpaid order: CLOSED.
 *
 * Lines printed include "order NO", "transaction ID", and last
 * "v3: N passed, N failed"; exit status 0 when none failed. Everything
 * allocated is freed (run it under valgrind or ASAN).
 */
#define _GNU_SOURCE /* strcasestr */
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

#include "wxpay.h"

#define ORDER_FEE 2999
#define REFUND_FEE 1000
#define MCHID "1900000109"
/* How long to wait for a notification (valgrind makes everything slow). */
#define NOTIFY_WAIT_MS 60000
#define MAX_REQUEST_BYTES (1 << 20)

#include "test_support.h"

/* Reads a whole HTTP/1.1 message from `conn` (Connection: close, or a
 * Content-Length). Returns it malloc'ed and NUL-terminated, with the offset
 * of its body in *header_len and the body's length in *body_len; NULL on
 * failure. */
static char *read_message(int conn, int need_length, size_t *header_len, size_t *body_len) {
    size_t cap = 8192;
    size_t got = 0;
    char *buf = malloc(cap + 1);
    size_t head = 0;
    size_t content_length = 0;
    int has_length = 0;
    if (buf == NULL) {
        return NULL;
    }
    for (;;) {
        if (head != 0 && has_length && got >= head + content_length) {
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
        if (n == 0 && head != 0 && !has_length && !need_length) {
            content_length = got - head; /* the peer closed: the body is complete */
            break;
        }
        if (n <= 0) {
            goto fail;
        }
        got += (size_t)n;
        buf[got] = '\0';
        if (head == 0) {
            char *end = strstr(buf, "\r\n\r\n");
            if (end == NULL) {
                continue;
            }
            head = (size_t)(end - buf) + 4;
            const char *line = buf;
            while ((line = strstr(line, "\r\n")) != NULL && line < end) {
                line += 2;
                if (strncasecmp(line, "content-length:", 15) == 0) {
                    content_length = strtoul(line + 15, NULL, 10);
                    has_length = 1;
                }
            }
            if ((need_length && !has_length) || content_length > MAX_REQUEST_BYTES) {
                goto fail;
            }
        }
    }
    *header_len = head;
    *body_len = content_length;
    buf[head + content_length] = '\0';
    return buf;
fail:
    free(buf);
    return NULL;
}

/* GETs the sandbox's `path`; returns the body (malloc'ed) of a 200, or NULL. */
static char *get_body(int port, const char *path) {
    int fd = connect_loopback(port);
    if (fd < 0) {
        return NULL;
    }
    char request[512];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", path,
                     port);
    char *body = NULL;
    if (n > 0 && (size_t)n < sizeof request && write_all(fd, request, (size_t)n) == 0) {
        size_t head = 0;
        size_t len = 0;
        char *message = read_message(fd, 0, &head, &len);
        int status = 0;
        if (message != NULL && sscanf(message, "HTTP/1.%*d %d", &status) == 1 && status == 200 &&
            strstr(message, "chunked") == NULL) {
            body = malloc(len + 1);
            if (body != NULL) {
                memcpy(body, message + head, len + 1);
            }
        }
        free(message);
    }
    close(fd);
    return body;
}

/* Appends `text` (`len` bytes) to `out` as the inside of a JSON string. */
static int json_append_escaped(char *out, size_t size, size_t *at, const char *text, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        char piece[8];
        if (c == '"' || c == '\\') {
            snprintf(piece, sizeof piece, "\\%c", c);
        } else if (c < 0x20) {
            snprintf(piece, sizeof piece, "\\u%04x", c);
        } else {
            piece[0] = (char)c;
            piece[1] = '\0';
        }
        size_t plen = strlen(piece);
        if (*at + plen + 1 >= size) {
            return -1;
        }
        memcpy(out + *at, piece, plen + 1);
        *at += plen;
    }
    return 0;
}

static int json_append(char *out, size_t size, size_t *at, const char *raw) {
    size_t len = strlen(raw);
    if (*at + len + 1 >= size) {
        return -1;
    }
    memcpy(out + *at, raw, len + 1);
    *at += len;
    return 0;
}

/* The header lines of `message` (up to the blank line at `head`) as a flat
 * JSON object {"Name": "value", ...}. Returns malloc'ed JSON or NULL. */
static char *headers_json(const char *message, size_t head) {
    size_t size = 2 * head + 16;
    char *out = malloc(size);
    size_t at = 0;
    if (out == NULL || json_append(out, size, &at, "{") != 0) {
        free(out);
        return NULL;
    }
    const char *line = strstr(message, "\r\n"); /* skip the request line */
    const char *end = message + head - 2;
    int first = 1;
    while (line != NULL && line + 2 < end) {
        line += 2;
        const char *eol = strstr(line, "\r\n");
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon != NULL) {
            const char *value = colon + 1;
            while (*value == ' ' || *value == '\t') {
                value++;
            }
            if ((!first && json_append(out, size, &at, ",") != 0) ||
                json_append(out, size, &at, "\"") != 0 ||
                json_append_escaped(out, size, &at, line, (size_t)(colon - line)) != 0 ||
                json_append(out, size, &at, "\":\"") != 0 ||
                json_append_escaped(out, size, &at, value, (size_t)(eol - value)) != 0 ||
                json_append(out, size, &at, "\"") != 0) {
                free(out);
                return NULL;
            }
            first = 0;
        }
        line = eol;
    }
    if (json_append(out, size, &at, "}") != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* Answers a request with `status` and `reply` (JSON or empty). */
static void send_reply(int conn, int status, const char *reply) {
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, status < 300 ? "OK" : "Error", strlen(reply));
    if (n > 0 && (size_t)n < sizeof head && write_all(conn, head, (size_t)n) == 0) {
        write_all(conn, reply, strlen(reply));
    }
    close(conn);
}

/* The integer value of the first `"key":N` of the compact JSON `doc`, or -1. */
static long json_int(const char *doc, const char *key) {
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *p = doc ? strstr(doc, pattern) : NULL;
    if (p == NULL) {
        return -1;
    }
    char *end = NULL;
    long value = strtol(p + strlen(pattern), &end, 10);
    return end == p + strlen(pattern) ? -1 : value;
}

/* ------------------------------------------------------------ the notify_url handler */

struct notification {
    char *headers; /* the headers as JSON, malloc'ed */
    char *body;    /* the raw body, malloc'ed, NUL-terminated */
    size_t len;
    char *json;    /* the verified document, a libwxpay string */
};

static void notification_free(struct notification *n) {
    free(n->headers);
    free(n->body);
    wxpay_string_free(n->json);
    memset(n, 0, sizeof *n);
}

/* Serves notify_url until a notification verifies; answers each request as
 * a merchant must: with the status and reply of the verifier's document. */
static int serve_until_verified(int listener, const WxPayClient *client, struct notification *got) {
    long deadline = now_ms() + NOTIFY_WAIT_MS;
    for (;;) {
        long left = deadline - now_ms();
        if (left <= 0) {
            return -1;
        }
        struct pollfd pfd = {listener, POLLIN, 0};
        if (poll(&pfd, 1, (int)left) <= 0) {
            return -1;
        }
        int conn = accept(listener, NULL, NULL);
        if (conn < 0 || set_timeouts(conn, 30) != 0) {
            if (conn >= 0) {
                close(conn);
            }
            continue;
        }
        size_t head = 0;
        size_t len = 0;
        char *message = read_message(conn, 1, &head, &len);
        char *headers = message ? headers_json(message, head) : NULL;
        if (headers == NULL) {
            free(message);
            close(conn);
            continue;
        }
        char *json = NULL;
        char *error = NULL;
        int32_t rc = wxpay_verify_signed_notification(client, headers,
                                                      (const uint8_t *)message + head, len,
                                                      ORDER_FEE, &json, &error);
        const char *document = rc == WXPAY_OK ? json : error;
        char reply[4096];
        long status = json_int(document, "reply_status");
        if (json_string(document, "reply", reply, sizeof reply) != 0 || status < 200) {
            check("the verifier's document carries a reply and its status", 0, document);
            snprintf(reply, sizeof reply, "%s", "{\"code\":\"FAIL\",\"message\":\"internal\"}");
            status = 500;
        }
        send_reply(conn, (int)status, reply);
        if (rc != WXPAY_OK) {
            fprintf(stderr, "v3: refused a notification: %.300s\n", error ? error : "");
            wxpay_string_free(error);
            free(headers);
            free(message);
            continue;
        }
        got->headers = headers;
        got->body = malloc(len + 1);
        if (got->body != NULL) {
            memcpy(got->body, message + head, len + 1);
        }
        got->len = len;
        got->json = json;
        free(message);
        return got->body != NULL ? 0 : -1;
    }
}

/* A copy of the first character of the string value of `"key":"` in `json`
 * flipped between 'A' and 'B' (or to 'A'): a tampered value. */
static char *flipped(const char *json, size_t len, const char *key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return NULL;
    }
    memcpy(copy, json, len + 1);
    char *at = strcasestr(copy, pattern); /* header names come in any case */
    if (at == NULL) {
        free(copy);
        return NULL;
    }
    at += strlen(pattern);
    *at = *at == 'A' ? 'B' : 'A';
    return copy;
}

/* A copy of the headers JSON with every Wechatpay-* name in upper case;
 * NULL when there is none. */
static char *recased(const char *headers) {
    char *copy = malloc(strlen(headers) + 1);
    if (copy == NULL) {
        return NULL;
    }
    memcpy(copy, headers, strlen(headers) + 1);
    int found = 0;
    for (char *at = copy; (at = strcasestr(at, "\"wechatpay-")) != NULL; found++) {
        for (at++; *at != '"' && *at != '\0'; at++) {
            if (*at >= 'a' && *at <= 'z') {
                *at = (char)(*at - 'a' + 'A');
            }
        }
    }
    if (!found) {
        free(copy);
        return NULL;
    }
    return copy;
}

/* Verifies (headers, body) and expects `want` with a failure reply and 500. */
static void expect_refused(const WxPayClient *client, const char *what, const char *headers,
                           const char *body, size_t len, int64_t expected, int32_t want,
                           const char *needle) {
    char *json = NULL;
    char *error = NULL;
    int32_t rc = wxpay_verify_signed_notification(client, headers, (const uint8_t *)body, len,
                                                  expected, &json, &error);
    int carries = error != NULL && strstr(error, "\"reply\":\"{\\\"code\\\":\\\"FAIL\\\"") != NULL &&
                  json_int(error, "reply_status") == 500;
    check(what, carries, error);
    expect_failure(what, rc, want, json == NULL, error, needle);
    wxpay_string_free(json);
}

/* ------------------------------------------------------------ the life cycle */

static int is_base64(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n % 4 != 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/' || (c == '=' && i >= n - 2);
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

static void notification_checks(const WxPayClient *client, const struct notification *paid,
                                const char *no) {
    char needle[128];
    snprintf(needle, sizeof needle, "\"out_trade_no\":\"%s\"", no);
    const char *const wanted[] = {"\"paid\":true", "\"total_fee\":2999", needle,
                                  "\"reply\":\"\"", "\"reply_status\":204", NULL};
    for (const char *const *w = wanted; *w != NULL; w++) {
        check("the v3 notification's document", strstr(paid->json, *w) != NULL, paid->json);
    }

    /* The success reply is the empty body; the failure reply is JSON. */
    char *reply = NULL;
    int32_t rc = wxpay_notification_success_reply(client, &reply, NULL);
    check("wxpay_notification_success_reply (v3): empty",
          rc == WXPAY_OK && reply != NULL && reply[0] == '\0', reply);
    wxpay_string_free(reply);
    reply = NULL;
    rc = wxpay_notification_failure_reply(client, "database busy", &reply, NULL);
    check("wxpay_notification_failure_reply (v3)",
          rc == WXPAY_OK && reply != NULL &&
              strcmp(reply, "{\"code\":\"FAIL\",\"message\":\"database busy\"}") == 0,
          reply);
    wxpay_string_free(reply);

    /* The same request again verifies again (WeChat Pay repeats them). */
    char *json = NULL;
    char *error = NULL;
    rc = wxpay_verify_signed_notification(client, paid->headers, (const uint8_t *)paid->body,
                                          paid->len, 0, &json, &error);
    wxpay_string_free(expect_ok("the same v3 notification again, amount unchecked", rc, json,
                                error, NULL));

    /* The header names in another case (upper) still verify. */
    char *upper = recased(paid->headers);
    check("the v3 notification carries Wechatpay-* headers", upper != NULL, paid->headers);
    if (upper != NULL) {
        json = NULL;
        error = NULL;
        rc = wxpay_verify_signed_notification(client, upper, (const uint8_t *)paid->body,
                                              paid->len, ORDER_FEE, &json, &error);
        wxpay_string_free(expect_ok("the v3 notification with upper-case header names", rc, json,
                                    error, NULL));
        free(upper);
    }

    /* A tampered body (the encrypted resource changed) breaks the signature. */
    char *forged = flipped(paid->body, paid->len, "ciphertext");
    check("the v3 notification carries a ciphertext", forged != NULL, paid->body);
    if (forged != NULL) {
        expect_refused(client, "a tampered v3 notification body", paid->headers, forged,
                       paid->len, 0, WXPAY_ERR_INVALID_NOTIFICATION, "signature");
        free(forged);
    }
    /* So does a forged signature header. */
    size_t hlen = strlen(paid->headers);
    char *forged_headers = flipped(paid->headers, hlen, "Wechatpay-Signature");
    check("the v3 notification carries Wechatpay-Signature", forged_headers != NULL,
          paid->headers);
    if (forged_headers != NULL) {
        expect_refused(client, "a forged Wechatpay-Signature", forged_headers, paid->body,
                       paid->len, 0, WXPAY_ERR_INVALID_NOTIFICATION, "signature");
        free(forged_headers);
    }
    /* The order was for 29.99; a merchant expecting 29.98 must refuse it. */
    expect_refused(client, "a v3 notification of another amount", paid->headers, paid->body,
                   paid->len, ORDER_FEE - 1, WXPAY_ERR_INVALID_NOTIFICATION, "total");
    /* Without its headers it cannot be verified. */
    expect_refused(client, "a v3 notification without its headers", "{}", paid->body, paid->len,
                   0, WXPAY_ERR_INVALID_NOTIFICATION, "Wechatpay");
    /* A header given twice (names are case-insensitive) is the caller's error. */
    char twice[256];
    snprintf(twice, sizeof twice,
             "{\"Wechatpay-Nonce\":\"a\",\"wechatpay-nonce\":\"b\",\"Wechatpay-Serial\":\"s\"}");
    expect_refused(client, "headers_json with a name twice", twice, paid->body, paid->len, 0,
                   WXPAY_ERR_INVALID_ARGUMENT, "more than once");
}

static void run(const WxPayClient *client, int listener, int sandbox_port, int certificate_mode) {
    char no[48];
    char query[256];
    char *json = NULL;
    char *error = NULL;
    int32_t rc;
    snprintf(no, sizeof no, "V3C%ldT%ld", (long)getpid(), (long)time(NULL) % 100000);
    printf("order %s\n", no);

    if (certificate_mode) {
        int32_t count = -1;
        rc = wxpay_download_certificates(client, &count, &error);
        char detail[700];
        snprintf(detail, sizeof detail, "rc %d, count %d: %.600s", rc, count,
                 error ? error : "");
        check("wxpay_download_certificates", rc == WXPAY_OK && count >= 1 && error == NULL,
              detail);
        wxpay_string_free(error);
        error = NULL;
    }

    /* 1. The order, unpaid: the app's parameters are RSA-signed. */
    char order[512];
    snprintf(order, sizeof order,
             "{\"out_trade_no\":\"%s\",\"total_fee\":%d,"
             "\"body\":\"C v3 \xe6\x94\xaf\xe4\xbb\x98\xe6\xb5\x8b\xe8\xaf\x95\","
             "\"client_ip\":\"196.168.1.1\"}",
             no, ORDER_FEE);
    rc = wxpay_build_pay_params(client, order, &json, &error);
    const char *const params_needles[] = {"\"partnerid\":\"" MCHID "\"",
                                          "\"package\":\"Sign=WXPay\"", NULL};
    char *params = expect_ok("wxpay_build_pay_params (v3)", rc, json, error, params_needles);
    if (params == NULL) {
        return;
    }
    printf("params %s\n", params);
    char sign[1024];
    check("the v3 sign is a base64 RSA-2048 signature",
          json_string(params, "sign", sign, sizeof sign) == 0 && strlen(sign) == 344 &&
              is_base64(sign),
          params);
    wxpay_string_free(params);

    snprintf(query, sizeof query, "{\"out_trade_no\":\"%s\"}", no);
    json = NULL;
    error = NULL;
    rc = wxpay_query_order(client, query, &json, &error);
    const char *const notpay[] = {"\"trade_state\":\"NOTPAY\"", NULL};
    wxpay_string_free(expect_ok("wxpay_query_order before payment (v3)", rc, json, error, notpay));

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
    struct notification paid;
    memset(&paid, 0, sizeof paid);
    if (serve_until_verified(listener, client, &paid) != 0) {
        check("a v3 notification arrives and verifies", 0, NULL);
        notification_free(&paid);
        return;
    }
    check("a v3 notification arrives and verifies", 1, NULL);
    notification_checks(client, &paid, no);
    char transaction_id[128];
    int have_id = json_string(paid.json, "transaction_id", transaction_id, sizeof transaction_id);
    notification_free(&paid);
    check("the notification carries a transaction_id", have_id == 0, NULL);
    if (have_id != 0) {
        return;
    }
    printf("transaction %s\n", transaction_id);

    /* 4. The order, paid, by its transaction_id; a refund. */
    char by_id[256];
    snprintf(by_id, sizeof by_id, "{\"transaction_id\":\"%s\"}", transaction_id);
    json = NULL;
    error = NULL;
    rc = wxpay_query_order(client, by_id, &json, &error);
    const char *const success[] = {"\"trade_state\":\"SUCCESS\"", "\"total_fee\":2999", NULL};
    wxpay_string_free(expect_ok("wxpay_query_order after payment (v3)", rc, json, error, success));

    char refund[512];
    snprintf(refund, sizeof refund,
             "{\"out_trade_no\":\"%s\",\"out_refund_no\":\"R%s\",\"total_fee\":%d,"
             "\"refund_fee\":%d,\"refund_desc\":\"\xe9\x80\x80\xe6\xac\xbe\"}",
             no, no, ORDER_FEE, REFUND_FEE);
    json = NULL;
    error = NULL;
    rc = wxpay_refund(client, refund, &json, &error);
    const char *const receipt_needles[] = {"\"refund_fee\":1000", "\"refund_id\":\"", NULL};
    char *receipt = expect_ok("wxpay_refund (v3)", rc, json, error, receipt_needles);
    if (receipt != NULL) {
        printf("refund %s\n", receipt);
        wxpay_string_free(receipt);
    }

    /* 1999 fen are left: 2000 more is refused with the gateway's code and status. */
    snprintf(refund, sizeof refund,
             "{\"out_trade_no\":\"%s\",\"out_refund_no\":\"R%s2\",\"total_fee\":%d,"
             "\"refund_fee\":2000}",
             no, no, ORDER_FEE);
    json = NULL;
    error = NULL;
    rc = wxpay_refund(client, refund, &json, &error);
    {
        int has_status = error != NULL && strstr(error, "\"http_status\":403") != NULL;
        check("a v3 rejection carries the HTTP status", has_status, error);
    }
    expect_failure("wxpay_refund of more than is left (v3)", rc, WXPAY_ERR_REJECTED, json == NULL,
                   error, "\"gateway_code\":\"NOT_ENOUGH\"");

    error = NULL;
    rc = wxpay_close_order(client, no, &error);
    expect_failure("wxpay_close_order of a paid order (v3)", rc, WXPAY_ERR_REJECTED, 1, error,
                   "\"gateway_code\":\"ORDER_PAID\"");

    /* 5. A second, unpaid order, closed. */
    char unpaid[64];
    snprintf(unpaid, sizeof unpaid, "%sU", no);
    snprintf(order, sizeof order,
             "{\"out_trade_no\":\"%s\",\"total_fee\":1,\"body\":\"b\",\"client_ip\":\"1.2.3.4\"}",
             unpaid);
    json = NULL;
    error = NULL;
    rc = wxpay_build_pay_params(client, order, &json, &error);
    wxpay_string_free(expect_ok("wxpay_build_pay_params (second v3 order)", rc, json, error, NULL));
    error = NULL;
    rc = wxpay_close_order(client, unpaid, &error);
    check("wxpay_close_order of an unpaid order (v3)", rc == WXPAY_OK && error == NULL, error);
    wxpay_string_free(error);
    snprintf(query, sizeof query, "{\"out_trade_no\":\"%s\"}", unpaid);
    json = NULL;
    error = NULL;
    rc = wxpay_query_order(client, query, &json, &error);
    const char *const closed[] = {"\"trade_state\":\"CLOSED\"", NULL};
    wxpay_string_free(expect_ok("wxpay_query_order of the closed order (v3)", rc, json, error,
                                closed));
}

/* The sandbox's v3 config with `notify_url` replaced; malloc'ed, or NULL. */
static char *v3_config(int sandbox_port, const char *notify_url) {
    char *config = get_body(sandbox_port, "/sandbox/config?api=v3");
    const char *key = "\"notify_url\":\"";
    char *at = config ? strstr(config, key) : NULL;
    char *end = at ? strchr(at + strlen(key), '"') : NULL;
    if (end == NULL) {
        free(config);
        return NULL;
    }
    size_t size = strlen(config) + strlen(notify_url) + 1;
    char *out = malloc(size);
    if (out != NULL) {
        snprintf(out, size, "%.*s%s%s", (int)(at - config + (long)strlen(key)), config, notify_url,
                 end);
    }
    free(config);
    return out;
}

int main(int argc, char **argv) {
    const char *base = argc > 1 ? argv[1] : getenv("WXPAY_SANDBOX_URL");
    int sandbox_port = base ? loopback_port(base) : -1;
    if (sandbox_port < 0) {
        fprintf(stderr, "usage: v3 http://127.0.0.1:PORT\n"
                        "       (a sandbox on loopback; or set WXPAY_SANDBOX_URL)\n");
        return 2;
    }
    int notify_port = 0;
    int listener = listen_loopback(&notify_port);
    if (listener < 0) {
        perror("v3: cannot listen on loopback");
        return 1;
    }
    char notify_url[64];
    snprintf(notify_url, sizeof notify_url, "http://127.0.0.1:%d/notify", notify_port);
    char *config = v3_config(sandbox_port, notify_url);
    if (config == NULL) {
        fprintf(stderr, "v3: GET /sandbox/config?api=v3 failed\n");
        close(listener);
        return 1;
    }
    int certificate_mode = strstr(config, "\"wechatpay_public_key\"") == NULL;
    printf("mode %s\n", certificate_mode ? "certificate" : "public-key");
    WxPayClient *client = NULL;
    char *error = NULL;
    int32_t rc = wxpay_client_new(config, &client, &error);
    free(config);
    if (rc != WXPAY_OK) {
        fprintf(stderr, "v3: wxpay_client_new failed: %d (%s): %s\n", rc, wxpay_result_name(rc),
                error ? error : "");
        wxpay_string_free(error);
        close(listener);
        return 1;
    }
    run(client, listener, sandbox_port, certificate_mode);
    wxpay_client_free(client);
    close(listener);
    printf("v3: %d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
