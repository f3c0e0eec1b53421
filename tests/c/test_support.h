/*
 * test_support.h: what the C programs of tests/c share: pass/fail counting,
 * checks of libwxpay's results and error documents, a JSON string reader,
 * and HTTP/1.1 on loopback (connect, listen, GET from and POST JSON to the
 * sandbox).
 * Header-only; include it once, after the system headers and "wxpay.h".
 */
#ifndef WXPAY_TEST_SUPPORT_H
#define WXPAY_TEST_SUPPORT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "wxpay.h"

static int passed;
static int failed;

static inline void check(const char *what, int ok, const char *detail) {
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "FAIL %s%s%.600s\n", what, detail ? ": " : "", detail ? detail : "");
    }
}

/* Checks a call that must succeed with an output (and no error document),
 * and that the output contains each of the NULL-terminated `needles`.
 * Returns the output (the caller frees it) or NULL. */
static inline char *expect_ok(const char *what, int32_t rc, char *out, char *error,
                       const char *const *needles) {
    if (rc != WXPAY_OK || out == NULL || error != NULL) {
        char detail[800];
        snprintf(detail, sizeof detail, "returned %d (%s): %.600s", rc, wxpay_result_name(rc),
                 error ? error : "(no error document)");
        check(what, 0, detail);
        wxpay_string_free(out);
        wxpay_string_free(error);
        return NULL;
    }
    for (; needles != NULL && *needles != NULL; needles++) {
        if (strstr(out, *needles) == NULL) {
            char detail[800];
            snprintf(detail, sizeof detail, "lacks %s: %.600s", *needles, out);
            check(what, 0, detail);
            wxpay_string_free(out);
            return NULL;
        }
    }
    check(what, 1, NULL);
    return out;
}

/* Checks a call that must fail with `want`, a NULL output (when `out_null`
 * is 0 the output was non-NULL), and an error document containing `needle`
 * (when not NULL). Frees the document. */
static inline void expect_failure(const char *what, int32_t rc, int32_t want, int out_null, char *error,
                           const char *needle) {
    char detail[800];
    if (rc != want || !out_null || error == NULL ||
        (needle != NULL && strstr(error, needle) == NULL)) {
        snprintf(detail, sizeof detail, "returned %d (%s), expected %d (%s)%s%s; error: %.500s",
                 rc, wxpay_result_name(rc), want, wxpay_result_name(want),
                 out_null ? "" : ", output not NULL", needle ? ", wanted " : "",
                 error ? error : "(none)");
        check(what, 0, detail);
    } else {
        check(what, 1, NULL);
    }
    wxpay_string_free(error);
}

/* ------------------------------------------------------------ JSON */

/* Copies the string value of the first `"key":"..."` of the compact JSON
 * `doc` into `out`, unescaped (ASCII \u escapes only). 0 on success. */
static inline int json_string(const char *doc, const char *key, char *out, size_t size) {
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char *p = doc ? strstr(doc, pattern) : NULL;
    if (p == NULL) {
        return -1;
    }
    p += strlen(pattern);
    size_t n = 0;
    while (*p != '"') {
        char c = *p++;
        if (c == '\0') {
            return -1;
        }
        if (c == '\\') {
            char e = *p++;
            switch (e) {
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case '/': c = '/'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned code = 0;
                if (sscanf(p, "%4x", &code) != 1 || code == 0 || code > 0x7f) {
                    return -1;
                }
                p += 4;
                c = (char)code;
                break;
            }
            default: return -1;
            }
        }
        if (n + 1 >= size) {
            return -1;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    return 0;
}

/* ------------------------------------------------------------ HTTP on loopback */

static inline long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int set_timeouts(int fd, int seconds) {
    struct timeval tv = {seconds, 0};
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
                   setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0
               ? 0
               : -1;
}

static inline int write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The port of "http://127.0.0.1:PORT[/]". */
static inline int loopback_port(const char *base) {
    const char *prefix = "http://127.0.0.1:";
    if (strncmp(base, prefix, strlen(prefix)) != 0) {
        return -1;
    }
    char *end = NULL;
    long port = strtol(base + strlen(prefix), &end, 10);
    if (port <= 0 || port > 65535 || (*end != '\0' && strcmp(end, "/") != 0)) {
        return -1;
    }
    return (int)port;
}

static inline int connect_loopback(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (set_timeouts(fd, 30) != 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A listening socket on 127.0.0.1 with a port of the kernel's choosing. */
static inline int listen_loopback(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(addr.sin_port);
    return fd;
}

/* Sends the sandbox one request, a POST of `json` to `path` or a GET of
 * `path` when `json` is NULL, and reads the answer (at most `size` - 1
 * bytes, NUL-terminated) into `answer`; returns the HTTP status or -1. */
static inline int http_exchange(int port, const char *path, const char *json, char *answer,
                                size_t size) {
    int fd = connect_loopback(port);
    if (fd < 0) {
        return -1;
    }
    char request[1024];
    int n = json == NULL
                ? snprintf(request, sizeof request,
                           "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
                           path, port)
                : snprintf(request, sizeof request,
                           "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                           "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                           "Connection: close\r\n\r\n%s",
                           path, port, strlen(json), json);
    size_t got = 0;
    if (n > 0 && (size_t)n < sizeof request && write_all(fd, request, (size_t)n) == 0) {
        ssize_t r;
        while (got + 1 < size && (r = recv(fd, answer + got, size - 1 - got, 0)) > 0) {
            got += (size_t)r;
        }
    }
    answer[got] = '\0';
    close(fd);
    int status = -1;
    return sscanf(answer, "HTTP/1.%*d %d", &status) == 1 ? status : -1;
}

/* POSTs `json` to the sandbox's `path`; returns the HTTP status or -1. */
static inline int post_json(int port, const char *path, const char *json) {
    char answer[512];
    return http_exchange(port, path, json, answer, sizeof answer);
}

#endif /* WXPAY_TEST_SUPPORT_H */
