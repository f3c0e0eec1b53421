/*
 * malformed.c: runs the malformed-call corpus (written by
 * tests/malformed/generate.py, its format described in
 * tests/malformed/corpus.py) through libwxpay's C ABI: at least 10,000
 * malformed calls to every exported function.
 *
 *     malformed CORPUS
 *
 * Every client has the corpus's sandbox (on loopback) as its gateway. The
 * valid calls must be accepted first; then, with fresh clients (no pooled
 * connection), each malformed call must be refused: a non-zero code of the
 * API (never WXPAY_ERR_PANIC or WXPAY_ERR_INTERNAL, never one only a
 * gateway's answer can cause), NULL outputs, and, when an error document was
 * asked for, one whose "code" is the returned code and whose "message" is not
 * empty. The functions that take nothing malformable must give their static
 * strings or return. Each function must get exactly as many calls as the
 * corpus counts for it (at least 10,000), and the sandbox's count of
 * accepted connections must not move during the malformed calls.
 *
 * Prints the corpus's seed, one line per function, "malformed: wxpay_x: N
 * calls, M wrong", the first wrong calls of each function with their corpus
 * line and what they were made of (never the input's text: it holds keys),
 * and last "malformed: N passed, M failed" (functions). Exit status 0 when no
 * call was wrong. Everything allocated is freed (run it under ASAN).
 */
#define _POSIX_C_SOURCE 200809L /* getline, sockets, with -std=c11 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wxpay.h"

#include "test_support.h"

#define CALLS 10000
#define SHOWN_PER_FUNCTION 5
#define MAX_ARGS 8
#define MAX_NAMED 16
/* A pointer value no failed call may leave in an output. */
#define SENTINEL ((void *)(uintptr_t)0x1)

enum fn {
    F_VERSION, F_RESULT_NAME, F_RESULT_MESSAGE, F_CLIENT_NEW, F_CLIENT_FREE, F_BUILD, F_SIGN,
    F_QUERY_ORDER, F_CLOSE_ORDER, F_REFUND, F_QUERY_REFUNDS, F_VERIFY_PAYMENT, F_VERIFY_REFUND,
    F_VERIFY_SIGNED, F_DOWNLOAD, F_SUCCESS_REPLY, F_FAILURE_REPLY, F_STRING_FREE, F_COUNT
};
static const char *const NAMES[F_COUNT] = {
    "wxpay_version", "wxpay_result_name", "wxpay_result_message", "wxpay_client_new",
    "wxpay_client_free", "wxpay_build_pay_params", "wxpay_sign", "wxpay_query_order",
    "wxpay_close_order", "wxpay_refund", "wxpay_query_refunds",
    "wxpay_verify_payment_notification", "wxpay_verify_refund_notification",
    "wxpay_verify_signed_notification", "wxpay_download_certificates",
    "wxpay_notification_success_reply", "wxpay_notification_failure_reply", "wxpay_string_free"};
/* How many arguments each takes. */
static const size_t ARITY[F_COUNT] = {0, 1, 1, 3, 1, 4, 5, 4, 3, 4, 4, 6, 6, 7, 3, 3, 4, 1};

static long calls[F_COUNT], wrong_calls[F_COUNT], expected[F_COUNT] = {0};
static int counted[F_COUNT];

/* The corpus's fragments and client configurations, and the clients. */
struct named {
    char name[32];
    char *data;
    size_t len;
};
static struct named fragments[MAX_NAMED], configs[MAX_NAMED];
static size_t fragment_count, config_count;
static WxPayClient *clients[MAX_NAMED];

/* The corpus line being run. */
static long line_number;
static const char *what;

static void die(const char *message) {
    fprintf(stderr, "malformed: corpus line %ld: %s\n", line_number, message);
    exit(2);
}

static int named_index(const struct named *table, size_t count, const char *name, size_t len) {
    for (size_t i = 0; i < count; i++) {
        if (strlen(table[i].name) == len && memcmp(table[i].name, name, len) == 0) {
            return (int)i;
        }
    }
    die("an unknown name");
    return -1;
}

static int hex_digit(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes the bytes token `token` ('SEG+SEG...) into a new buffer, with a
 * NUL after its `len` bytes. Two passes: the length, then the bytes. */
static char *decode(const char *token, size_t *len) {
    char *out = NULL;
    for (int pass = 0; pass < 2; pass++) {
        size_t n = 0;
        for (const char *s = token + 1; *s != '\0';) {
            size_t seg = strcspn(s, "+");
            if (*s == '*') {
                unsigned value = 0;
                unsigned long long repeat = 0;
                if (sscanf(s, "*%2x.%llu", &value, &repeat) != 2) {
                    die("a bad run");
                }
                if (out != NULL) {
                    memset(out + n, (int)value, (size_t)repeat);
                }
                n += (size_t)repeat;
            } else if (*s == '$') {
                const struct named *f =
                    &fragments[named_index(fragments, fragment_count, s + 1, seg - 1)];
                if (out != NULL) {
                    memcpy(out + n, f->data, f->len);
                }
                n += f->len;
            } else {
                for (size_t i = 0; i < seg; i++, n++) {
                    char c = s[i];
                    if (c == '%') {
                        if (i + 2 >= seg || hex_digit(s[i + 1]) < 0 || hex_digit(s[i + 2]) < 0) {
                            die("a bad escape");
                        }
                        c = (char)(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
                        i += 2;
                    }
                    if (out != NULL) {
                        out[n] = c;
                    }
                }
            }
            s += seg + (s[seg] == '+');
        }
        if (out == NULL) {
            out = malloc(n + 1);
            if (out == NULL) {
                die("out of memory");
            }
        } else {
            out[n] = '\0';
            *len = n;
        }
    }
    return out;
}

/* A "NAME BYTES" header line into `table`. */
static void add_named(struct named *table, size_t *count, char *rest) {
    char *token = strchr(rest, ' ');
    if (*count == MAX_NAMED || token == NULL || token - rest >= (long)sizeof table->name) {
        die("a bad fragment or client");
    }
    *token++ = '\0';
    struct named *entry = &table[*count];
    snprintf(entry->name, sizeof entry->name, "%s", rest);
    entry->data = decode(token, &entry->len);
    (*count)++;
}

/* ------------------------------------------------------------ the calls */

struct arg {
    /* '-' NULL, '@' a client, 'o' an output, 'e' out_error, '=' an integer, '\'' bytes */
    char kind;
    char *data;
    size_t len;
    WxPayClient *client;
    int64_t i;
    uint64_t u;
};

struct outcome {
    int32_t rc;
    int out_given, error_given;
    char *out;          /* a string output */
    WxPayClient *made;  /* wxpay_client_new's */
    int32_t count;      /* wxpay_download_certificates's */
    char *error;
};

static void parse_arg(const char *token, struct arg *a) {
    memset(a, 0, sizeof *a);
    a->kind = token[0];
    switch (a->kind) {
    case '-': case 'o': case 'e':
        break;
    case '@':
        a->client = clients[named_index(configs, config_count, token + 1, strlen(token + 1))];
        break;
    case '=':
        a->u = token[1] == '-' ? (uint64_t)strtoll(token + 1, NULL, 10)
                               : strtoull(token + 1, NULL, 10);
        a->i = (int64_t)a->u;
        break;
    case '\'':
        a->data = decode(token, &a->len);
        break;
    default:
        die("a bad argument");
    }
}

static struct outcome invoke(enum fn f, const struct arg *a) {
    struct outcome o = {0, 0, 0, SENTINEL, SENTINEL, 7, SENTINEL};
    for (size_t k = 0; k < MAX_ARGS; k++) {
        o.out_given |= a[k].kind == 'o';
        o.error_given |= a[k].kind == 'e';
    }
    char **out = o.out_given ? &o.out : NULL;
    char **error = o.error_given ? &o.error : NULL;
#define S(k) (a[k].kind == '-' ? NULL : a[k].data)
#define B(k) ((const uint8_t *)S(k))
#define C(k) (a[k].client)
    switch (f) {
    case F_CLIENT_NEW:
        o.rc = wxpay_client_new(S(0), o.out_given ? &o.made : NULL, error);
        break;
    case F_BUILD:
        o.rc = wxpay_build_pay_params(C(0), S(1), out, error);
        break;
    case F_SIGN:
        o.rc = wxpay_sign(S(0), S(1), S(2), out, error);
        break;
    case F_QUERY_ORDER:
        o.rc = wxpay_query_order(C(0), S(1), out, error);
        break;
    case F_CLOSE_ORDER:
        o.rc = wxpay_close_order(C(0), S(1), error);
        break;
    case F_REFUND:
        o.rc = wxpay_refund(C(0), S(1), out, error);
        break;
    case F_QUERY_REFUNDS:
        o.rc = wxpay_query_refunds(C(0), S(1), out, error);
        break;
    case F_VERIFY_PAYMENT:
        o.rc = wxpay_verify_payment_notification(C(0), B(1), a[2].u, a[3].i, out, error);
        break;
    case F_VERIFY_REFUND:
        o.rc = wxpay_verify_refund_notification(C(0), B(1), a[2].u, a[3].i, out, error);
        break;
    case F_VERIFY_SIGNED:
        o.rc = wxpay_verify_signed_notification(C(0), S(1), B(2), a[3].u, a[4].i, out, error);
        break;
    case F_DOWNLOAD:
        o.rc = wxpay_download_certificates(C(0), o.out_given ? &o.count : NULL, error);
        break;
    case F_SUCCESS_REPLY:
        o.rc = wxpay_notification_success_reply(C(0), out, error);
        break;
    case F_FAILURE_REPLY:
        o.rc = wxpay_notification_failure_reply(C(0), S(1), out, error);
        break;
    default:
        die("not a function that takes a client or a document");
    }
#undef S
#undef B
#undef C
    return o;
}

/* Whether every output given is NULL after the call; frees what is not. */
static int outputs_null(enum fn f, struct outcome *o) {
    int null = !o->out_given || (f == F_CLIENT_NEW   ? o->made == NULL
                                 : f == F_DOWNLOAD ? o->count == 0
                                                   : o->out == NULL);
    if (o->made != NULL && o->made != SENTINEL) {
        wxpay_client_free(o->made);
    }
    if (o->out != NULL && o->out != SENTINEL) {
        wxpay_string_free(o->out);
    }
    return null;
}

static void wrong(enum fn f, const char *detail) {
    if (++wrong_calls[f] <= SHOWN_PER_FUNCTION) {
        fprintf(stderr, "WRONG %s, corpus line %ld [%s]: %s\n", NAMES[f], line_number, what,
                detail);
    }
}

/* The codes only a gateway's answer (or an attempt to reach it) can cause. */
static int reached_gateway(int32_t rc) {
    return rc == WXPAY_ERR_NETWORK || rc == WXPAY_ERR_HTTP_STATUS || rc == WXPAY_ERR_GATEWAY ||
           rc == WXPAY_ERR_MALFORMED_RESPONSE || rc == WXPAY_ERR_TOKEN_STORE ||
           rc == WXPAY_ERR_REJECTED;
}

/* Judges one malformed call. */
static void judge_refused(enum fn f, struct outcome *o) {
    const char *name = wxpay_result_name(o->rc);
    const char *error = o->error != SENTINEL && o->error != NULL ? o->error : "";
    const char *message = strstr(error, "\"message\":\"");
    char code[32], kind[96], detail[700];
    snprintf(code, sizeof code, "\"code\":%d,", o->rc);
    snprintf(kind, sizeof kind, "\"kind\":\"%s\"", name);
    const char *problem = NULL;
    if (!outputs_null(f, o)) {
        problem = "an output is not NULL after a failure";
    }
    if (o->rc == WXPAY_OK || o->rc == WXPAY_ERR_PANIC || o->rc == WXPAY_ERR_INTERNAL ||
        strcmp(name, "unknown") == 0) {
        problem = "not a refusal";
    } else if (reached_gateway(o->rc)) {
        problem = "the call reached the gateway";
    } else if (problem == NULL && o->error_given && *error == '\0') {
        problem = "no error document";
    } else if (problem == NULL && o->error_given &&
               (strstr(error, code) == NULL || strstr(error, kind) == NULL)) {
        problem = "the error document lacks the code or its kind";
    } else if (problem == NULL && o->error_given && (message == NULL || message[11] == '"')) {
        problem = "the error document has no message";
    }
    if (problem != NULL) {
        snprintf(detail, sizeof detail, "%s: returned %d (%s): %.400s", problem, o->rc, name,
                 error);
        wrong(f, detail);
    }
    if (*error != '\0') {
        wxpay_string_free(o->error);
    }
}

static int setup_failed;

/* Judges a valid call: accepted, or (`reach`) refused by the gateway. */
static void judge_valid(enum fn f, int reach, struct outcome *o) {
    char detail[700];
    int ok = o->rc == WXPAY_OK || (reach && o->rc == WXPAY_ERR_REJECTED);
    snprintf(detail, sizeof detail, "%s, corpus line %ld [%s]: returned %d (%s): %.400s",
             NAMES[f], line_number, what, o->rc, wxpay_result_name(o->rc),
             o->error != SENTINEL && o->error != NULL ? o->error : "");
    check("a valid call is accepted", ok, detail);
    setup_failed |= !ok;
    outputs_null(f, o);
    if (o->error != SENTINEL) {
        wxpay_string_free(o->error);
    }
}

/* Judges a call of a function that takes nothing malformable. */
static void judge_static(enum fn f, const char *verdict, const struct arg *a) {
    static const char *first_version;
    int ok = 0;
    if (f == F_VERSION && strcmp(verdict, "same") == 0) {
        const char *v = wxpay_version();
        first_version = first_version ? first_version : v;
        ok = v != NULL && *v != '\0' && v == first_version;
    } else if (f == F_RESULT_NAME && strncmp(verdict, "name=", 5) == 0) {
        const char *name = wxpay_result_name((int32_t)a[0].i);
        ok = name != NULL && strcmp(name, verdict + 5) == 0;
    } else if (f == F_RESULT_MESSAGE &&
               (!strcmp(verdict, "known") || !strcmp(verdict, "unknown"))) {
        const char *message = wxpay_result_message((int32_t)a[0].i);
        ok = message != NULL && *message != '\0' &&
             (strcmp(message, "unknown result code") == 0) == (verdict[0] == 'u');
    } else if ((f == F_STRING_FREE || f == F_CLIENT_FREE) && !strcmp(verdict, "void") &&
               a[0].kind == '-') {
        if (f == F_STRING_FREE) {
            wxpay_string_free(NULL);
        } else {
            wxpay_client_free(NULL);
        }
        ok = 1;
    } else {
        die("a verdict this function cannot have");
    }
    if (!ok) {
        wrong(f, "not the expected static result");
    }
}

/* ------------------------------------------------------------ the corpus */

static void make_clients(int fresh) {
    for (size_t i = 0; i < config_count; i++) {
        wxpay_client_free(clients[i]);
        clients[i] = NULL;
        char *error = NULL;
        int32_t rc = wxpay_client_new(configs[i].data, &clients[i], &error);
        char detail[600];
        snprintf(detail, sizeof detail, "%s: %d (%s): %.400s", configs[i].name, rc,
                 wxpay_result_name(rc), error ? error : "");
        check(fresh ? "a fresh client" : "a valid configuration makes a client",
              rc == WXPAY_OK && clients[i] != NULL, detail);
        setup_failed |= rc != WXPAY_OK;
        wxpay_string_free(error);
    }
}

/* The sandbox's count of accepted connections, or -1. */
static long sandbox_connections(int port) {
    char answer[2048];
    if (http_exchange(port, "/sandbox/stats", NULL, answer, sizeof answer) != 200) {
        return -1;
    }
    const char *at = strstr(answer, "\"connections\":");
    return at ? strtol(at + 14, NULL, 10) : -1;
}

static enum fn function_of(const char *name) {
    for (size_t f = 0; f < F_COUNT; f++) {
        if (strcmp(NAMES[f], name) == 0) {
            return (enum fn)f;
        }
    }
    die("an unknown function");
    return F_COUNT;
}

/* Runs one call line ("VERDICT FUNCTION ARG... [# WHAT]"). */
static void run_call(char *line, int *phase, int port, long *connections_before) {
    char *hash = strstr(line, " # ");
    what = hash ? hash + 3 : "-";
    if (hash) {
        *hash = '\0';
    }
    char *save = NULL;
    const char *verdict = strtok_r(line, " ", &save);
    enum fn f = function_of(strtok_r(NULL, " ", &save));
    int valid = !strcmp(verdict, "ok") || !strcmp(verdict, "reach");
    if (*phase == 0) { /* the first call: clients for the valid calls */
        make_clients(0);
        *phase = 1;
    }
    if (!valid && *phase == 1) { /* the first malformed call: fresh clients */
        if (setup_failed) {
            fprintf(stderr, "malformed: a valid call or configuration was refused\n");
            exit(1);
        }
        make_clients(1);
        *connections_before = sandbox_connections(port);
        *phase = 2;
    } else if (valid && *phase == 2) {
        die("a valid call after the malformed ones");
    }
    struct arg a[MAX_ARGS];
    size_t n = 0;
    for (char *token; (token = strtok_r(NULL, " ", &save)) != NULL; n++) {
        if (n == MAX_ARGS) {
            die("too many arguments");
        }
        parse_arg(token, &a[n]);
    }
    if (n != ARITY[f]) {
        die("not the function's number of arguments");
    }
    for (size_t k = n; k < MAX_ARGS; k++) {
        memset(&a[k], 0, sizeof a[k]);
        a[k].kind = '-';
    }
    if (valid) {
        struct outcome o = invoke(f, a);
        judge_valid(f, verdict[0] == 'r', &o);
    } else if (!strcmp(verdict, "refuse")) {
        calls[f]++;
        struct outcome o = invoke(f, a);
        judge_refused(f, &o);
    } else {
        calls[f]++;
        judge_static(f, verdict, a);
    }
    for (size_t k = 0; k < n; k++) {
        free(a[k].data);
    }
}

int main(int argc, char **argv) {
    FILE *corpus = argc == 2 ? fopen(argv[1], "r") : NULL;
    if (corpus == NULL) {
        fprintf(stderr, "usage: malformed CORPUS (from tests/malformed/generate.py)\n");
        return 2;
    }
    char *line = NULL;
    size_t size = 0;
    ssize_t got;
    int port = -1, phase = 0;
    long connections_before = -1;
    while ((got = getline(&line, &size, corpus)) > 0) {
        line_number++;
        if (line[got - 1] == '\n') {
            line[got - 1] = '\0';
        }
        char *rest = strchr(line, ' ');
        if (rest != NULL) {
            *rest++ = '\0';
        }
        if (line_number == 1) {
            if (strcmp(line, "wxpay-malformed-corpus") != 0 || rest == NULL ||
                strcmp(rest, "1") != 0) {
                die("not a malformed-call corpus");
            }
        } else if (strcmp(line, "seed") == 0) {
            printf("malformed: seed %s (corpus %s; set WXPAY_MALFORMED_SEED to change it)\n", rest,
                   argv[1]);
            fflush(stdout);
        } else if (strcmp(line, "sandbox") == 0) {
            port = loopback_port(rest);
        } else if (strcmp(line, "fragment") == 0) {
            add_named(fragments, &fragment_count, rest);
        } else if (strcmp(line, "client") == 0) {
            add_named(configs, &config_count, rest);
        } else if (strcmp(line, "count") == 0) {
            char name[64];
            long n = 0;
            if (sscanf(rest, "%63s %ld", name, &n) != 2) {
                die("a bad count");
            }
            enum fn f = function_of(name);
            expected[f] = n;
            counted[f] = 1;
        } else if (rest != NULL && port > 0) {
            rest[-1] = ' ';
            run_call(line, &phase, port, &connections_before);
        } else {
            die("a call before the sandbox, or a bad line");
        }
    }
    free(line);
    fclose(corpus);
    long connections_after = port > 0 ? sandbox_connections(port) : -1;

    /* From here on, one verdict per function. */
    passed = 0;
    failed = 0;
    for (size_t f = 0; f < F_COUNT; f++) {
        int ok = wrong_calls[f] == 0 && counted[f] && calls[f] == expected[f] && calls[f] >= CALLS;
        printf("malformed: %s: %ld calls, %ld wrong\n", NAMES[f], calls[f], wrong_calls[f]);
        if (calls[f] != expected[f] || calls[f] < CALLS) {
            printf("malformed: %s: %ld calls made, the corpus holds %ld (at least %d wanted)\n",
                   NAMES[f], calls[f], expected[f], CALLS);
        }
        ok ? passed++ : failed++;
    }
    /* The second count's own connection is the only new one. */
    if (phase != 2 || connections_before < 0 || connections_after != connections_before + 1) {
        printf("malformed: the sandbox accepted %ld connections during the malformed calls "
               "(%ld before, %ld after): some reached the gateway\n",
               connections_after - connections_before - 1, connections_before, connections_after);
        failed++;
    } else {
        printf("malformed: no connection reached the sandbox\n");
    }
    for (size_t i = 0; i < config_count; i++) {
        wxpay_client_free(clients[i]);
        free(configs[i].data);
    }
    for (size_t i = 0; i < fragment_count; i++) {
        free(fragments[i].data);
    }
    printf("malformed: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
