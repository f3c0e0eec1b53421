/*
 * malformed.c: at least 10,000 generated malformed calls to every function
 * libwxpay exports. Each call must be refused: a non-zero result code that is
 * a code of the API (never WXPAY_ERR_PANIC or WXPAY_ERR_INTERNAL, and never
 * one that only a gateway's answer can cause), NULL outputs, and, when an
 * error document was asked for, one whose "code" is the returned code and
 * whose "message" is not empty. The functions that take no malformable
 * argument (wxpay_version, wxpay_result_name/message with every kind of int
 * code, and the NULL-tolerant frees) are called as many times and must give
 * their static strings or return.
 *
 *     malformed BASE_URL
 *
 * BASE_URL is a sandbox on loopback (`wxpay sandbox --port 0`). Every client
 * has it as its gateway, so a malformed call that got past validation would
 * come back as a success or a gateway's error; the sandbox's count of
 * accepted connections is compared before and after the malformed calls too.
 *
 * Every malformed input is a valid document with one or more mutations, each
 * of which alone makes it invalid: the valid documents (the configurations of
 * sandbox_account.h, the orders, order references and refunds the other
 * programs of tests/c send, a payment notification signed with wxpay_sign,
 * a refund notification encrypted with the sandbox's API key, and an API v3
 * notification the sandbox delivers to a loopback port of this program) are
 * checked to be accepted first. The mutations: NULL for each pointer
 * argument in turn (inputs, the client, out-pointers), invalid UTF-8,
 * embedded NULs (the part before the NUL malformed), strings from 0 bytes to
 * 16 MiB (log-distributed; a handful above WXPAY_MAX_INPUT_BYTES), JSON of the
 * wrong type at each field and at the top level, every kind of bad amount,
 * missing required fields, unknown and duplicated keys, over-long values,
 * clients of the wrong API generation, and notification bodies whose
 * signature, merchant, amount or shape is wrong.
 *
 * The generator is deterministic (splitmix64); its seed is printed, and set
 * with WXPAY_MALFORMED_SEED (decimal or 0x-hex). Prints one line per
 * function, "malformed: wxpay_x: N calls, M wrong", the first wrong calls of
 * each function with what was generated (never the input's text: it holds
 * keys), and last "malformed: N passed, M failed" (functions). Exit status 0
 * when no call was wrong. Everything allocated is freed (run it under ASAN).
 */
#define _POSIX_C_SOURCE 200809L /* sockets, strcasecmp, with -std=c11 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "wxpay.h"

#include "sandbox_account.h"
#include "test_support.h"

/* Calls per exported function. */
#define CALLS 10000
#define DEFAULT_SEED UINT64_C(0x77787061794d414c)
/* The largest strings: a handful per function, past WXPAY_MAX_INPUT_BYTES. */
#define HUGE_BYTES ((size_t)16 << 20)
#define HUGE_PER_FUNCTION 6
/* Configurations refused only after the API v3 merchant key was parsed (an
 * RSA key: tens of milliseconds in a debug build), per run. */
#define SLOW_PER_FUNCTION 25
/* The amount of the API v3 order whose notification is the valid base. */
#define V3_ORDER_FEE 2999
#define CLIENT_TIMEOUT_MS 5000
#define SHOWN_PER_FUNCTION 5
/* A pointer value no failed call may leave in an output. */
#define SENTINEL ((void *)(uintptr_t)0x1)
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void die(const char *what) {
    fprintf(stderr, "malformed: %s\n", what);
    exit(2);
}

/* ------------------------------------------------------------ generator */

static uint64_t rng_state;

/* splitmix64. */
static uint64_t next_u64(void) {
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* A number in [0, n) (0 when n is 0). */
static size_t below(size_t n) {
    return n == 0 ? 0 : (size_t)(next_u64() % n);
}

/* A number in [lo, hi]. */
static uint64_t between(uint64_t lo, uint64_t hi) {
    uint64_t span = hi - lo;
    return span == UINT64_MAX ? next_u64() : lo + next_u64() % (span + 1);
}

static int percent(unsigned p) {
    return below(100) < p;
}

static unsigned bit_width(size_t n) {
    unsigned bits = 0;
    while (n != 0) {
        bits++;
        n >>= 1;
    }
    return bits;
}

/* A length in [lo, hi], log-distributed: every power of two is as likely
 * (lo when hi is not above it). */
static size_t log_length(size_t lo, size_t hi) {
    if (hi <= lo) {
        return lo;
    }
    unsigned lo_bits = bit_width(lo);
    unsigned k = lo_bits + (unsigned)below(bit_width(hi) - lo_bits + 1);
    size_t from = k == 0 ? 0 : (size_t)1 << (k - 1);
    size_t to = k == 0 ? 0 : ((size_t)1 << (k - 1)) * 2 - 1;
    from = from < lo ? lo : from;
    to = to > hi ? hi : to;
    return from > to ? lo : from + below(to - from + 1);
}

#define PICK(array) ((array)[below(COUNT(array))])

/* ------------------------------------------------------------ byte buffers */

/* A growable byte string, always NUL-terminated at `len` (it may hold NULs). */
struct buf {
    char *data;
    size_t len;
    size_t cap;
};

static void buf_reserve(struct buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) {
        return;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) {
        cap *= 2;
    }
    char *bigger = realloc(b->data, cap);
    if (bigger == NULL) {
        die("out of memory");
    }
    b->data = bigger;
    b->cap = cap;
}

static void buf_add(struct buf *b, const void *data, size_t len) {
    buf_reserve(b, len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s) {
    buf_add(b, s, strlen(s));
}

static void buf_fill(struct buf *b, char c, size_t n) {
    buf_reserve(b, n);
    memset(b->data + b->len, c, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_printf(struct buf *b, const char *format, ...) {
    va_list args;
    va_start(args, format);
    char small[256];
    int n = vsnprintf(small, sizeof small, format, args);
    va_end(args);
    if (n < 0) {
        die("vsnprintf failed");
    }
    if ((size_t)n < sizeof small) {
        buf_add(b, small, (size_t)n);
        return;
    }
    buf_reserve(b, (size_t)n);
    va_start(args, format);
    vsnprintf(b->data + b->len, (size_t)n + 1, format, args);
    va_end(args);
    b->len += (size_t)n;
}

static void buf_insert(struct buf *b, size_t at, const void *data, size_t len) {
    buf_reserve(b, len);
    memmove(b->data + at + len, b->data + at, b->len - at + 1);
    memcpy(b->data + at, data, len);
    b->len += len;
}

static void buf_clear(struct buf *b) {
    b->len = 0;
    buf_reserve(b, 0);
    b->data[0] = '\0';
}

static void buf_free(struct buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* `text` as a JSON string, quotes included. */
static void json_quote(struct buf *out, const char *text, size_t len) {
    buf_add(out, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            buf_add(out, esc, 2);
        } else if (c < 0x20) {
            buf_printf(out, "\\u%04x", c);
        } else {
            buf_add(out, &text[i], 1);
        }
    }
    buf_add(out, "\"", 1);
}

/* A decimal number of `digits` digits (the first not 0). */
static void random_digits(struct buf *out, size_t digits) {
    for (size_t i = 0; i < digits; i++) {
        char d = (char)('0' + (i == 0 ? 1 + below(9) : below(10)));
        buf_add(out, &d, 1);
    }
}

/* ------------------------------------------------------------ flat documents */

/* A flat JSON object (or an XML message) as a list of fields. Values are
 * raw JSON text (for XML: the field's text). Keys may repeat. */
#define MAX_FIELDS 32
struct field {
    char key[64];
    struct buf value;
};
struct doc {
    size_t count;
    struct field field[MAX_FIELDS];
};

static void doc_free(struct doc *d) {
    for (size_t i = 0; i < d->count; i++) {
        buf_free(&d->field[i].value);
    }
    d->count = 0;
}

static void doc_add(struct doc *d, const char *key, const char *value, size_t len) {
    if (d->count == MAX_FIELDS || strlen(key) >= sizeof d->field[0].key) {
        die("document too large");
    }
    struct field *f = &d->field[d->count++];
    snprintf(f->key, sizeof f->key, "%s", key);
    memset(&f->value, 0, sizeof f->value);
    buf_add(&f->value, value, len);
}

static int doc_find(const struct doc *d, const char *key) {
    for (size_t i = 0; i < d->count; i++) {
        if (strcmp(d->field[i].key, key) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static void doc_set(struct doc *d, const char *key, const char *value, size_t len) {
    int i = doc_find(d, key);
    if (i < 0) {
        doc_add(d, key, value, len);
    } else {
        buf_clear(&d->field[i].value);
        buf_add(&d->field[i].value, value, len);
    }
}

static void doc_set_str(struct doc *d, const char *key, const char *value) {
    doc_set(d, key, value, strlen(value));
}

static void doc_remove(struct doc *d, size_t i) {
    buf_free(&d->field[i].value);
    memmove(&d->field[i], &d->field[i + 1], (d->count - i - 1) * sizeof d->field[0]);
    d->count--;
}

static void doc_copy(struct doc *dst, const struct doc *src) {
    dst->count = 0;
    for (size_t i = 0; i < src->count; i++) {
        doc_add(dst, src->field[i].key, src->field[i].value.data, src->field[i].value.len);
    }
}

static void doc_json(const struct doc *d, struct buf *out) {
    buf_add(out, "{", 1);
    for (size_t i = 0; i < d->count; i++) {
        if (i > 0) {
            buf_add(out, ",", 1);
        }
        json_quote(out, d->field[i].key, strlen(d->field[i].key));
        buf_add(out, ":", 1);
        buf_add(out, d->field[i].value.data, d->field[i].value.len);
    }
    buf_add(out, "}", 1);
}

/* Reads a flat JSON object of string and number values (the documents of
 * this program, no escapes in keys). */
static void doc_parse(struct doc *d, const char *json) {
    const char *p = json;
    d->count = 0;
    if (*p++ != '{') {
        die("doc_parse: not an object");
    }
    while (*p != '}') {
        if (*p++ != '"') {
            die("doc_parse: expected a key");
        }
        const char *key = p;
        while (*p != '"' && *p != '\0') {
            p++;
        }
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(p - key), key);
        p++;
        if (*p++ != ':') {
            die("doc_parse: expected ':'");
        }
        const char *value = p;
        if (*p == '"') {
            for (p++; *p != '"'; p++) {
                if (*p == '\\') {
                    p++;
                }
                if (*p == '\0') {
                    die("doc_parse: unterminated string");
                }
            }
            p++;
        } else {
            while (*p != ',' && *p != '}' && *p != '\0') {
                p++;
            }
        }
        doc_add(d, name, value, (size_t)(p - value));
        if (*p == ',') {
            p++;
        } else if (*p != '}') {
            die("doc_parse: expected ',' or '}'");
        }
    }
}

/* The flat XML message of `d` (values are text; CDATA or plain, by chance). */
static void doc_xml(const struct doc *d, struct buf *out) {
    buf_str(out, "<xml>");
    for (size_t i = 0; i < d->count; i++) {
        const struct field *f = &d->field[i];
        int cdata = percent(70) || memchr(f->value.data, '<', f->value.len) != NULL ||
                    memchr(f->value.data, '&', f->value.len) != NULL;
        buf_printf(out, "<%s>%s", f->key, cdata ? "<![CDATA[" : "");
        buf_add(out, f->value.data, f->value.len);
        buf_printf(out, "%s</%s>", cdata ? "]]>" : "", f->key);
    }
    buf_str(out, "</xml>");
}

/* The fields of `d` but `sign` as the JSON params of wxpay_sign. */
static void doc_sign_params(const struct doc *d, struct buf *out) {
    buf_add(out, "{", 1);
    int first = 1;
    for (size_t i = 0; i < d->count; i++) {
        if (strcmp(d->field[i].key, "sign") == 0) {
            continue;
        }
        if (!first) {
            buf_add(out, ",", 1);
        }
        first = 0;
        json_quote(out, d->field[i].key, strlen(d->field[i].key));
        buf_add(out, ":", 1);
        json_quote(out, d->field[i].value.data, d->field[i].value.len);
    }
    buf_add(out, "}", 1);
}

/* ------------------------------------------------------------ the verdicts */

enum fn {
    FN_VERSION,
    FN_RESULT_NAME,
    FN_RESULT_MESSAGE,
    FN_CLIENT_NEW,
    FN_CLIENT_FREE,
    FN_BUILD_PAY_PARAMS,
    FN_SIGN,
    FN_QUERY_ORDER,
    FN_CLOSE_ORDER,
    FN_REFUND,
    FN_QUERY_REFUNDS,
    FN_VERIFY_PAYMENT,
    FN_VERIFY_REFUND,
    FN_VERIFY_SIGNED,
    FN_DOWNLOAD_CERTIFICATES,
    FN_SUCCESS_REPLY,
    FN_FAILURE_REPLY,
    FN_STRING_FREE,
    FN_COUNT
};

static struct tally {
    const char *name;
    long calls;
    long wrong;
    int huge;   /* strings above WXPAY_MAX_INPUT_BYTES generated so far */
    int slow;   /* slow configurations generated so far */
} tallies[FN_COUNT] = {
    {"wxpay_version", 0, 0, 0, 0},
    {"wxpay_result_name", 0, 0, 0, 0},
    {"wxpay_result_message", 0, 0, 0, 0},
    {"wxpay_client_new", 0, 0, 0, 0},
    {"wxpay_client_free", 0, 0, 0, 0},
    {"wxpay_build_pay_params", 0, 0, 0, 0},
    {"wxpay_sign", 0, 0, 0, 0},
    {"wxpay_query_order", 0, 0, 0, 0},
    {"wxpay_close_order", 0, 0, 0, 0},
    {"wxpay_refund", 0, 0, 0, 0},
    {"wxpay_query_refunds", 0, 0, 0, 0},
    {"wxpay_verify_payment_notification", 0, 0, 0, 0},
    {"wxpay_verify_refund_notification", 0, 0, 0, 0},
    {"wxpay_verify_signed_notification", 0, 0, 0, 0},
    {"wxpay_download_certificates", 0, 0, 0, 0},
    {"wxpay_notification_success_reply", 0, 0, 0, 0},
    {"wxpay_notification_failure_reply", 0, 0, 0, 0},
    {"wxpay_string_free", 0, 0, 0, 0},
};

/* What the current call was made of, for the report of a wrong call. */
static char what[512];

static void describe(const char *format, ...) {
    size_t used = strlen(what);
    if (used + 4 >= sizeof what) {
        return;
    }
    if (used > 0) {
        snprintf(what + used, sizeof what - used, " + ");
        used += 3;
    }
    va_list args;
    va_start(args, format);
    vsnprintf(what + used, sizeof what - used, format, args);
    va_end(args);
}

static void wrong(enum fn f, const char *detail) {
    struct tally *t = &tallies[f];
    t->wrong++;
    if (t->wrong <= SHOWN_PER_FUNCTION) {
        fprintf(stderr, "WRONG %s, call %ld [%s]: %s\n", t->name, t->calls, what, detail);
    }
}

/* The codes only a gateway's answer (or an attempt to reach it) can cause. */
static int reached_gateway(int32_t rc) {
    return rc == WXPAY_ERR_NETWORK || rc == WXPAY_ERR_HTTP_STATUS || rc == WXPAY_ERR_GATEWAY ||
           rc == WXPAY_ERR_MALFORMED_RESPONSE || rc == WXPAY_ERR_TOKEN_STORE ||
           rc == WXPAY_ERR_REJECTED;
}

/* Judges one malformed call: `rc`, whether its outputs are NULL, and its
 * error document (when `asked`, i.e. an out_error was passed). Frees the
 * document. */
static void judge(enum fn f, int32_t rc, int outputs_null, int asked, char *error) {
    char detail[700];
    tallies[f].calls++;
    const char *name = wxpay_result_name(rc);
    if (rc == WXPAY_OK) {
        wrong(f, "returned WXPAY_OK");
    } else if (rc == WXPAY_ERR_PANIC || rc == WXPAY_ERR_INTERNAL) {
        snprintf(detail, sizeof detail, "returned %d (%s): %.500s", rc, name,
                 error && error != SENTINEL ? error : "");
        wrong(f, detail);
    } else if (reached_gateway(rc)) {
        snprintf(detail, sizeof detail, "returned %d (%s): the call reached the gateway: %.400s",
                 rc, name, error && error != SENTINEL ? error : "");
        wrong(f, detail);
    } else if (strcmp(name, "unknown") == 0) {
        snprintf(detail, sizeof detail, "returned %d, not a result code", rc);
        wrong(f, detail);
    } else if (!outputs_null) {
        wrong(f, "an output is not NULL after a failure");
    } else if (asked) {
        char code[32];
        char kind[96];
        snprintf(code, sizeof code, "\"code\":%d,", rc);
        snprintf(kind, sizeof kind, "\"kind\":\"%s\"", name);
        const char *message = error && error != SENTINEL ? strstr(error, "\"message\":\"") : NULL;
        if (error == NULL || error == SENTINEL) {
            wrong(f, "no error document");
        } else if (strstr(error, code) == NULL || strstr(error, kind) == NULL) {
            snprintf(detail, sizeof detail, "the error document lacks %s or %s: %.400s", code,
                     kind, error);
            wrong(f, detail);
        } else if (message == NULL || message[11] == '"') {
            snprintf(detail, sizeof detail, "the error document has no message: %.400s", error);
            wrong(f, detail);
        }
    }
    if (asked && error != NULL && error != SENTINEL) {
        wxpay_string_free(error);
    }
}

/* A failed call's string output: whether it is NULL (it is freed if not). */
static int take_null(char *out) {
    if (out == NULL) {
        return 1;
    }
    if (out != SENTINEL) {
        wxpay_string_free(out);
    }
    return 0;
}

/* ------------------------------------------------------------ bad values */

static const char *const INVALID_UTF8[] = {
    "\xff",         "\xfe",         "\xc0\xaf",     "\xe0\x80\xaf", "\xed\xa0\x80",
    "\xf4\x90\x80\x80", "\x80",     "\xbf",         "\xc3",         "\xe6\x94",
    "\xf0\x9f\x98", "\xc3\x28",     "\xf8\x88\x80\x80\x80",
};

/* Inserts an invalid UTF-8 sequence into `b` before `limit` (the visible
 * part), at a position whose next byte is ASCII: the sequence cannot
 * complete a character there. */
static void insert_invalid_utf8(struct buf *b, size_t limit) {
    size_t at = below(limit + 1);
    while (at < limit && (unsigned char)b->data[at] >= 0x80) {
        at++;
    }
    const char *bad = PICK(INVALID_UTF8);
    buf_insert(b, at, bad, strlen(bad));
}

static const char *const WRONG_FOR_STRING[] = {
    "0", "123", "-1", "1.5", "1e3", "true", "false", "[]", "[\"x\"]", "{}", "{\"value\":\"x\"}",
};
static const char *const WRONG_FOR_INTEGER[] = {
    "\"30\"", "\"\"", "true", "false", "[]", "[30]", "{}", "{\"value\":30}", "1.5", "-1.5", "1e3",
};

/* A JSON value that is not an amount of fen from 1 to 2^31-1 (`null` only
 * when `null_refused`). */
static void bad_fen(struct buf *out, int null_refused) {
    switch (below(null_refused ? 12 : 11)) {
    case 0:
        buf_str(out, PICK(((const char *const[]){"0", "-0"})));
        break;
    case 1:
        buf_printf(out, "-%" PRIu64, between(1, UINT64_C(9223372036854775807)));
        break;
    case 2:
        buf_printf(out, "-%" PRIu64, between(1, 100000));
        break;
    case 3:
        buf_printf(out, "%" PRIu64, between(UINT64_C(2147483648), UINT64_MAX));
        break;
    case 4:
        buf_str(out, PICK(((const char *const[]){"2147483648", "4294967295", "4294967296",
                                                 "9223372036854775807", "18446744073709551615",
                                                 "18446744073709551616",
                                                 "-9223372036854775808"})));
        break;
    case 5: /* more digits than any integer type holds */
        random_digits(out, 20 + below(60));
        break;
    case 6:
        buf_str(out, PICK(((const char *const[]){"0.01", "1.5", "1e2", "1E2", "1.0", "100.0",
                                                 "-1.5", "1e-2", "0.0", "2147483647.0"})));
        break;
    case 7:
        buf_printf(out, "%u.%02u", (unsigned)below(100000), 1 + (unsigned)below(99));
        break;
    case 8:
        buf_str(out, PICK(((const char *const[]){"\"100\"", "\"1\"", "\"0.01\"", "\"\"",
                                                 "\"abc\"", "\"1999\""})));
        break;
    case 9:
        buf_str(out, PICK(((const char *const[]){"true", "false"})));
        break;
    case 10:
        buf_str(out, PICK(((const char *const[]){"[]", "[1]", "{}", "{\"fen\":1}"})));
        break;
    default:
        buf_str(out, "null");
        break;
    }
}

/* A JSON value that is not a decimal string of yuan from 0.01 to
 * 21474836.47 with at most two decimals. */
static void bad_yuan(struct buf *out, int null_refused) {
    switch (below(null_refused ? 9 : 8)) {
    case 0:
        buf_str(out, PICK(((const char *const[]){
                         "\"0\"", "\"0.00\"", "\"-0\"", "\"-1\"", "\"-0.01\"", "\"0.001\"",
                         "\"1.234\"", "\"21474836.48\"", "\"99999999999999999999\"", "\"NaN\"",
                         "\"inf\"", "\"-inf\"", "\"Infinity\"", "\"1e2\"", "\"1E2\"", "\"+1\"",
                         "\"1,00\"", "\"0x10\"", "\"\"", "\"   \"", "\"1.2.3\"", "\"abc\"",
                         "\"1 0\"", "\".\"", "\"1.\"", "\"\\uff11\"", "\"1.\\u0000\""})));
        break;
    case 1: /* too many decimals */
        buf_printf(out, "\"%u.%02u%u\"", (unsigned)below(1000), (unsigned)below(100),
                   1 + (unsigned)below(9));
        break;
    case 2: /* above 21474836.47 yuan */
        buf_printf(out, "\"%" PRIu64 ".%02u\"", between(21474837, UINT64_C(99999999999)),
                   (unsigned)below(100));
        break;
    case 3:
        buf_add(out, "\"", 1);
        random_digits(out, 12 + below(60));
        buf_add(out, "\"", 1);
        break;
    case 4:
        buf_printf(out, "\"-%u.%02u\"", 1 + (unsigned)below(1000), (unsigned)below(100));
        break;
    case 5: /* a JSON number, not a string */
        buf_str(out, PICK(((const char *const[]){"0.29", "19.99", "1", "100", "0", "-1"})));
        break;
    case 6:
        buf_str(out, PICK(((const char *const[]){"true", "false"})));
        break;
    case 7:
        buf_str(out, PICK(((const char *const[]){"[]", "[\"1.00\"]", "{}", "{\"yuan\":\"1\"}"})));
        break;
    default:
        buf_str(out, "null");
        break;
    }
}

/* ------------------------------------------------------------ document specs */

enum value_kind { V_STRING, V_INTEGER, V_FEN, V_YUAN, V_ANY };

/* Removing the field is refused. */
#define F_REQUIRED 1u
/* `null` is refused. */
#define F_NULL 2u
/* Removal, null and refused values are seen only after an RSA key was parsed. */
#define F_SLOW 4u

/* What the generator knows about a field of a valid document. */
struct field_spec {
    const char *key;
    enum value_kind kind;
    unsigned flags;
    /* Raw JSON values that are certainly refused (NULL-terminated), or NULL. */
    const char *const *bad;
    /* The longest value accepted, in bytes (0: no limit), and what an
     * over-long value starts with. */
    size_t max_len;
    const char *long_prefix;
};

/* A mutation of a document that is certainly refused, about the field named
 * `key` (at index `i` of the document). */
struct extra {
    const char *name;
    const char *key;
    void (*apply)(struct doc *d, size_t i);
};

struct doc_spec {
    const char *argument;
    const struct field_spec *fields;
    size_t field_count;
    int unknown_keys_refused;
    int duplicates_refused;
    /* Header names: a second name differing only in case is refused too. */
    int case_insensitive;
    const struct extra *extras;
    size_t extra_count;
};

static const struct field_spec *spec_field(const struct doc_spec *spec, const char *key) {
    for (size_t i = 0; i < spec->field_count; i++) {
        if (strcasecmp(spec->fields[i].key, key) == 0) {
            return &spec->fields[i];
        }
    }
    return NULL;
}

/* Configurations. */
static const char *const BAD_NON_EMPTY[] = {"\"\"", "\"   \"", "\"\\t\"", NULL};
static const char *const BAD_SECRET[] = {"\"\"", NULL};
static const char *const BAD_API[] = {"\"v4\"", "\"V2\"", "\"\"", "\"legacy \"", "\"v2\\u0000\"",
                                      "\"API v3\"", NULL};
static const char *const BAD_NOTIFY_URL[] = {"\"\"", "\"not a url\"", "\"ftp://example.com/notify\"",
                                             "\"mailto:pay@example.com\"", "\"//example.com/n\"",
                                             "\"/notify\"", "\"https://exa mple.com/\"",
                                             "\"https://exa\\u0000mple.com/\"", NULL};
static const char *const BAD_API_BASE[] = {
    "\"http://example.com\"", "\"http://10.0.0.1:8080\"", "\"https://example.com/?q=1\"",
    "\"https://example.com/#f\"", "\"https://u:p@example.com\"", "\"ftp://127.0.0.1\"",
    "\"not a url\"", "\"\"", "\"127.0.0.1:8080\"", NULL};
static const char *const BAD_TIMEOUT[] = {"0", "300001", "18446744073709551615",
                                          "18446744073709551616", "-1", "1.5", "1e3", NULL};
static const char *const BAD_SIGN_TYPE[] = {"\"SHA1\"", "\"md5\"", "\"\"", "\"HMAC_SHA256\"",
                                            "\"RSA\"", NULL};
static const char *const BAD_V3_KEY[] = {"\"0123456789abcdef0123456789abcde\"",
                                         "\"0123456789abcdef0123456789abcdef0\"", "\"\"", NULL};
static const char *const BAD_PEM[] = {
    "\"not a key\"", "\"\"",
    "\"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n\"",
    "\"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n\"", NULL};

static const struct field_spec CONFIG_FIELDS[] = {
    {"api", V_STRING, F_REQUIRED | F_NULL, BAD_API, 0, NULL},
    {"appid", V_STRING, F_REQUIRED | F_NULL, BAD_NON_EMPTY, 0, NULL},
    {"notify_url", V_STRING, F_REQUIRED | F_NULL, BAD_NOTIFY_URL, 255, "https://example.com/"},
    {"api_base", V_STRING, 0, BAD_API_BASE, 0, NULL},
    {"timeout_ms", V_INTEGER, F_NULL, BAD_TIMEOUT, 0, NULL},
    {"app_secret", V_STRING, F_REQUIRED | F_NULL, BAD_SECRET, 0, NULL},
    {"app_key", V_STRING, F_REQUIRED | F_NULL, BAD_SECRET, 0, NULL},
    {"partner_id", V_STRING, F_REQUIRED | F_NULL, BAD_NON_EMPTY, 0, NULL},
    {"partner_key", V_STRING, F_REQUIRED | F_NULL, BAD_SECRET, 0, NULL},
    {"mch_id", V_STRING, F_REQUIRED | F_NULL, BAD_NON_EMPTY, 0, NULL},
    {"api_key", V_STRING, F_REQUIRED | F_NULL, BAD_SECRET, 0, NULL},
    {"sign_type", V_STRING, F_NULL, BAD_SIGN_TYPE, 0, NULL},
    {"mchid", V_STRING, F_REQUIRED | F_NULL | F_SLOW, BAD_NON_EMPTY, 0, NULL},
    {"merchant_private_key", V_STRING, F_REQUIRED | F_NULL, BAD_PEM, 0, NULL},
    {"merchant_serial_no", V_STRING, F_REQUIRED | F_NULL | F_SLOW, BAD_NON_EMPTY, 0, NULL},
    {"api_v3_key", V_STRING, F_REQUIRED | F_NULL | F_SLOW, BAD_V3_KEY, 0, NULL},
    {"wechatpay_public_key", V_STRING, F_SLOW, BAD_PEM, 0, NULL},
    {"wechatpay_public_key_id", V_STRING, F_REQUIRED | F_NULL | F_SLOW, BAD_NON_EMPTY, 0, NULL},
};

/* Another generation's name: its own keys are missing from the document. */
static void switch_generation(struct doc *d, size_t i) {
    (void)i;
    int api = doc_find(d, "api");
    const char *now = api < 0 ? "\"legacy\"" : d->field[api].value.data;
    const char *others[2];
    size_t n = 0;
    const char *const all[] = {"\"legacy\"", "\"v2\"", "\"v3\""};
    for (size_t k = 0; k < COUNT(all); k++) {
        if (strcmp(all[k], now) != 0) {
            others[n++] = all[k];
        }
    }
    doc_set_str(d, "api", others[below(n)]);
}

/* A key the configuration knows, with a value of the wrong type or refused. */
static void refused_known_key(struct doc *d, size_t i) {
    (void)i;
    static const char *const pairs[][2] = {
        {"sandbox", "\"yes\""},
        {"sandbox", "1"},
        {"token_store_fallback", "\"true\""},
        {"input_charset", "\"latin1\""},
        {"input_charset", "\"utf8\""},
        {"token_store", "\"memcached://127.0.0.1\""},
        {"token_store", "\"\""},
        {"platform_cert_refresh_secs", "\"60\""},
        {"platform_cert_refresh_secs", "-1"},
        {"client_cert", "\"apiclient_cert.p12\""},
        {"client_cert", "{\"pfx\":\"x\"}"},
        {"merchant_private_key_file", "7"},
    };
    size_t k = below(COUNT(pairs));
    if (doc_find(d, pairs[k][0]) < 0) {
        doc_add(d, pairs[k][0], pairs[k][1], strlen(pairs[k][1]));
    } else {
        doc_set_str(d, "timeout_ms", "0");
    }
}

/* API v3: the key both inline and as a file, or only as an unreadable file. */
static void key_file(struct doc *d, size_t i) {
    (void)i;
    const char *missing = "\"/nonexistent/wxpay-malformed/apiclient_key.pem\"";
    if (percent(50)) {
        doc_set_str(d, "merchant_private_key_file", missing);
    } else {
        int key = doc_find(d, "merchant_private_key");
        if (key >= 0) {
            doc_remove(d, (size_t)key);
        }
        doc_set_str(d, "merchant_private_key_file",
                    percent(50) ? missing : "\"/nonexistent-directory/\"");
    }
}

/* A 2014-flow configuration has no `api` key: the switch is about appid,
 * which no other mutation of the same call then touches. */
static const struct extra CONFIG_LEGACY_EXTRAS[] = {
    {"another generation", "appid", switch_generation},
    {"a known key refused", "timeout_ms", refused_known_key},
};
static const struct extra CONFIG_V2_EXTRAS[] = {
    {"another generation", "api", switch_generation},
    {"a known key refused", "timeout_ms", refused_known_key},
};
static const struct extra CONFIG_V3_EXTRAS[] = {
    {"another generation", "api", switch_generation},
    {"a known key refused", "timeout_ms", refused_known_key},
    {"the merchant key as a file", "merchant_private_key", key_file},
};

static const struct doc_spec CONFIG_LEGACY_SPEC = {
    "config_json", CONFIG_FIELDS, COUNT(CONFIG_FIELDS), 1, 1, 0,
    CONFIG_LEGACY_EXTRAS, COUNT(CONFIG_LEGACY_EXTRAS)};
static const struct doc_spec CONFIG_V2_SPEC = {
    "config_json", CONFIG_FIELDS, COUNT(CONFIG_FIELDS), 1, 1, 0,
    CONFIG_V2_EXTRAS, COUNT(CONFIG_V2_EXTRAS)};
static const struct doc_spec CONFIG_V3_SPEC = {
    "config_json", CONFIG_FIELDS, COUNT(CONFIG_FIELDS), 1, 1, 0,
    CONFIG_V3_EXTRAS, COUNT(CONFIG_V3_EXTRAS)};

/* Orders. */
static const char *const BAD_ID[] = {"\"\"", "\"A B\"", "\"A.B\"", "\"A/B\"", "\"A\\u0000\"",
                                     "\"\\u8ba2\\u5355\"", "\"A+B\"", "\"A#1\"", "\"A%20\"",
                                     "\"A\\n\"", "\"\\u00c5\"", NULL};
static const char *const BAD_BODY[] = {"\"\"", "\"a\\u0001b\"", "\"line\\nbreak\"", "\"tab\\tx\"",
                                       "\"del\\u007f\"", "\"nul\\u0000\"", "\"\\u0085\"", NULL};
static const char *const BAD_CLIENT_IP[] = {
    "\"\"", "\"::1\"", "\"256.1.1.1\"", "\"1.2.3\"", "\"1.2.3.4.5\"", "\"localhost\"",
    "\" 1.2.3.4\"", "\"1.2.3.4 \"", "\"1.2.3.-4\"", "\"0x7f.0.0.1\"", "\"01.2.3.4\"",
    "\"1.2.3.4/32\"", NULL};
static const char *const BAD_ATTACH[] = {"\"a\\u0001\"", "\"\\u0000\"", "\"x\\ny\"", NULL};
static const char *const BAD_EXPIRE[] = {"0", "4", "10081", "4294967296", "-1", "1.5",
                                         "100000000000000000000", NULL};
static const char *const BAD_TRACEID[] = {"\"\"", "\"a b\"", "\"\\u00e9\"", "\"a\\u0001\"",
                                          "\"\\u0000\"", NULL};

static const struct field_spec ORDER_FIELDS[] = {
    {"out_trade_no", V_STRING, F_REQUIRED | F_NULL, BAD_ID, 32, ""},
    {"total_fee", V_FEN, F_REQUIRED | F_NULL, NULL, 0, NULL},
    {"total_yuan", V_YUAN, F_REQUIRED | F_NULL, NULL, 0, NULL},
    {"body", V_STRING, F_REQUIRED | F_NULL, BAD_BODY, 128, ""},
    {"client_ip", V_STRING, F_REQUIRED | F_NULL, BAD_CLIENT_IP, 0, NULL},
    {"attach", V_STRING, 0, BAD_ATTACH, 127, ""},
    {"expire_minutes", V_INTEGER, 0, BAD_EXPIRE, 0, NULL},
    {"traceid", V_STRING, 0, BAD_TRACEID, 64, ""},
};

/* The other amount too: exactly one of total_fee and total_yuan is allowed. */
static void both_amounts(struct doc *d, size_t i) {
    (void)i;
    if (doc_find(d, "total_fee") >= 0) {
        doc_set_str(d, "total_yuan", "\"0.01\"");
    } else {
        doc_set_str(d, "total_fee", "1");
    }
}

static const struct extra ORDER_EXTRAS[] = {
    {"both amounts", "total_fee", both_amounts},
    {"both amounts", "total_yuan", both_amounts},
};
static const struct doc_spec ORDER_SPEC = {
    "order_json", ORDER_FIELDS, COUNT(ORDER_FIELDS), 1, 1, 0, ORDER_EXTRAS, COUNT(ORDER_EXTRAS)};

/* Order references. */
static const struct field_spec REF_FIELDS[] = {
    {"out_trade_no", V_STRING, F_REQUIRED | F_NULL, BAD_ID, 32, ""},
    {"transaction_id", V_STRING, F_REQUIRED | F_NULL, BAD_ID, 32, "4200"},
};

/* The other identifier too: exactly one is allowed. */
static void both_ids(struct doc *d, size_t i) {
    (void)i;
    if (doc_find(d, "out_trade_no") >= 0) {
        doc_set_str(d, "transaction_id", "\"4200000001202401010000000001\"");
    } else {
        doc_set_str(d, "out_trade_no", "\"MALFORMED1\"");
    }
}

/* serde's enum form of an order reference: an unknown key. */
static void enum_form(struct doc *d, size_t i) {
    const char *key = strcmp(d->field[i].key, "out_trade_no") == 0 ? "OutTradeNo" : "TransactionId";
    snprintf(d->field[i].key, sizeof d->field[i].key, "%s", key);
}

static const struct extra REF_EXTRAS[] = {
    {"both identifiers", "out_trade_no", both_ids},
    {"both identifiers", "transaction_id", both_ids},
    {"serde's enum form", "out_trade_no", enum_form},
    {"serde's enum form", "transaction_id", enum_form},
};
static const struct doc_spec REF_SPEC = {
    "order_ref_json", REF_FIELDS, COUNT(REF_FIELDS), 1, 1, 0, REF_EXTRAS, COUNT(REF_EXTRAS)};

/* Refunds. */
static const char *const BAD_REFUND_NO[] = {"\"\"", "\"R 1\"", "\"\\u9000\"", "\"R\\u0000\"",
                                            "\"R/1\"", "\"R.1\"", "\"R\\t1\"", NULL};
static const struct field_spec REFUND_FIELDS[] = {
    {"out_trade_no", V_STRING, F_REQUIRED | F_NULL, BAD_ID, 32, ""},
    {"transaction_id", V_STRING, F_REQUIRED | F_NULL, BAD_ID, 32, "4200"},
    {"out_refund_no", V_STRING, F_REQUIRED | F_NULL, BAD_REFUND_NO, 64, "R"},
    {"total_fee", V_FEN, F_REQUIRED | F_NULL, NULL, 0, NULL},
    {"refund_fee", V_FEN, F_REQUIRED | F_NULL, NULL, 0, NULL},
    {"refund_desc", V_STRING, 0, NULL, 80, ""},
};

/* Valid amounts, but more refunded than paid. */
static void refund_above_total(struct doc *d, size_t i) {
    (void)i;
    uint64_t total = between(1, UINT64_C(2147483646));
    char text[32];
    snprintf(text, sizeof text, "%" PRIu64, total);
    doc_set_str(d, "total_fee", text);
    snprintf(text, sizeof text, "%" PRIu64, between(total + 1, UINT64_C(2147483647)));
    doc_set_str(d, "refund_fee", text);
}

static const struct extra REFUND_EXTRAS[] = {
    {"both identifiers", "out_trade_no", both_ids},
    {"both identifiers", "transaction_id", both_ids},
    {"refund_fee above total_fee", "refund_fee", refund_above_total},
};
static const struct doc_spec REFUND_SPEC = {"refund_json", REFUND_FIELDS, COUNT(REFUND_FIELDS),
                                            1, 1, 0, REFUND_EXTRAS, COUNT(REFUND_EXTRAS)};

/* API v3 notification headers: other headers are allowed (and ignored). */
static const struct field_spec HEADER_FIELDS[] = {
    {"Wechatpay-Serial", V_STRING, F_REQUIRED | F_NULL, NULL, 0, NULL},
    {"Wechatpay-Signature", V_STRING, F_REQUIRED | F_NULL, NULL, 0, NULL},
    {"Wechatpay-Timestamp", V_STRING, F_REQUIRED | F_NULL, NULL, 0, NULL},
    {"Wechatpay-Nonce", V_STRING, F_REQUIRED | F_NULL, NULL, 0, NULL},
    {"Content-Type", V_STRING, F_NULL, NULL, 0, NULL},
};

/* A Wechatpay-* header with another value: the signature covers the
 * timestamp and the nonce, the serial names the key, the timestamp must be
 * recent. */
static void changed_header(struct doc *d, size_t i) {
    const char *name = d->field[i].key;
    struct buf *value = &d->field[i].value; /* a JSON string */
    struct buf text = {0};
    size_t inner = value->len - 2;
    switch (below(5)) {
    case 0: /* one character changed */
        buf_add(&text, value->data + 1, inner);
        if (inner > 0) {
            size_t at = below(inner);
            text.data[at] = text.data[at] == 'A' ? 'B' : 'A';
        } else {
            buf_add(&text, "A", 1);
        }
        break;
    case 1: /* cut short */
        buf_add(&text, value->data + 1, below(inner));
        break;
    case 2: /* longer */
        buf_add(&text, value->data + 1, inner);
        buf_str(&text, "0");
        break;
    case 3: /* a stale or impossible timestamp (the signature covers it too) */
        buf_printf(&text, "%s",
                   PICK(((const char *const[]){"0", "1700000000", "-1", "abc", "",
                                               "99999999999999999999", " 1700000000"})));
        if (strcasecmp(name, "Wechatpay-Timestamp") != 0) {
            buf_clear(&text);
            buf_add(&text, value->data + 1, inner);
            buf_str(&text, "x");
        }
        break;
    default:
        buf_str(&text, PICK(((const char *const[]){"", "AAAA", "not base64!", "PUB_KEY_ID_0"})));
        if (text.len == inner && memcmp(text.data, value->data + 1, inner) == 0) {
            buf_str(&text, "x");
        }
        break;
    }
    buf_clear(value);
    json_quote(value, text.data, text.len);
    buf_free(&text);
}

static const struct extra HEADER_EXTRAS[] = {
    {"a Wechatpay-* header changed", "Wechatpay-Serial", changed_header},
    {"a Wechatpay-* header changed", "Wechatpay-Signature", changed_header},
    {"a Wechatpay-* header changed", "Wechatpay-Timestamp", changed_header},
    {"a Wechatpay-* header changed", "Wechatpay-Nonce", changed_header},
};
static const struct doc_spec HEADER_SPEC = {"headers_json", HEADER_FIELDS, COUNT(HEADER_FIELDS),
                                            0, 1, 1, HEADER_EXTRAS, COUNT(HEADER_EXTRAS)};

/* wxpay_sign's params: any key, string or integer values. */
static const struct field_spec PARAM_FIELDS[] = {{"*", V_ANY, F_NULL, NULL, 0, NULL}};
static const struct doc_spec PARAMS_SPEC = {"params_json", PARAM_FIELDS, 0, 0, 0, 0, NULL, 0};

/* ------------------------------------------------------------ JSON arguments */

/* The spec of `key` (wxpay_sign's params accept any key). */
static const struct field_spec *field_of(const struct doc_spec *spec, const char *key) {
    if (spec->fields == PARAM_FIELDS) {
        return &PARAM_FIELDS[0];
    }
    return spec_field(spec, key);
}

/* A value of the wrong JSON type for `f`. */
static const char *wrong_type(const struct field_spec *f) {
    switch (f->kind) {
    case V_INTEGER:
        return PICK(WRONG_FOR_INTEGER);
    case V_ANY:
        return PICK(((const char *const[]){"1.5", "1e2", "-0.5", "true", "false", "null", "[]",
                                          "[\"x\"]", "{}", "{\"a\":\"b\"}"}));
    case V_FEN: /* not a JSON integer */
        return PICK(((const char *const[]){"\"1\"", "\"\"", "true", "false", "[]", "[1]", "{}",
                                          "{\"fen\":1}", "1.5", "1e2", "1.0"}));
    case V_YUAN: /* not a JSON string */
        return PICK(((const char *const[]){"1", "19.99", "0.29", "true", "false", "[]",
                                          "[\"1.00\"]", "{}", "{\"yuan\":\"1\"}"}));
    default:
        return PICK(WRONG_FOR_STRING);
    }
}

/* A key no document of `spec` knows. */
static void unknown_key(char *key, size_t size) {
    static const char *const names[] = {"x_malformed", "APPID", "appId", "total", "amount",
                                        "price", "out_trade_no ", "order", "sign", "x\x01y"};
    if (percent(50)) {
        snprintf(key, size, "%s", PICK(names));
    } else {
        snprintf(key, size, "k%08" PRIx64, next_u64() & 0xffffffffu);
    }
}

/* Set when a mutation that is refused only after an RSA key was parsed was
 * applied (see SLOW_PER_FUNCTION). */
static int slow_applied;

/* Whether `key` was added by a mutation (it is not a key of `base`). */
static int added_key(const struct doc *base, const char *key) {
    return doc_find(base, key) < 0;
}

/* Applies 1 to 3 structural mutations to `d` (a copy of `base`), each
 * certainly refused, each on a field no other one touched (nor added: a
 * second mutation must not undo the first). Returns how many were applied.
 * `slow_ok`: mutations refused only after an RSA key was parsed may be
 * picked. */
static int mutate_fields(struct doc *d, const struct doc *base, const struct doc_spec *spec,
                         int slow_ok) {
    int applied = 0;
    int wanted = 1 + (int)below(3);
    char touched[16][64];
    size_t touched_count = 0;
    for (int attempt = 0; attempt < 40 && applied < wanted && d->count > 0; attempt++) {
        size_t i = below(d->count);
        char key[64];
        snprintf(key, sizeof key, "%s", d->field[i].key);
        int seen = added_key(base, key);
        for (size_t t = 0; t < touched_count; t++) {
            seen |= strcasecmp(touched[t], key) == 0;
        }
        const struct field_spec *f = field_of(spec, key);
        if (seen || f == NULL) {
            continue;
        }
        /* Removal, null and refused values of these are only seen late. */
        int slow_blocked = (f->flags & F_SLOW) && !slow_ok;
        int slow = (f->flags & F_SLOW) != 0;
        struct buf value = {0};
        int done = 1;
        switch (below(8)) {
        case 0: /* removed */
            if (!(f->flags & F_REQUIRED) || slow_blocked) {
                done = 0;
                break;
            }
            doc_remove(d, i);
            describe("%s removed", key);
            break;
        case 1: /* the wrong JSON type */
            doc_set_str(d, key, wrong_type(f));
            describe("%s of the wrong type", key);
            slow = 0;
            break;
        case 2: /* null */
            if (!(f->flags & F_NULL) || slow_blocked) {
                done = 0;
                break;
            }
            doc_set_str(d, key, "null");
            describe("%s null", key);
            break;
        case 3: /* a refused value */
            if (f->kind == V_FEN) {
                bad_fen(&value, (f->flags & F_NULL) != 0);
            } else if (f->kind == V_YUAN) {
                bad_yuan(&value, (f->flags & F_NULL) != 0);
            } else if (f->bad != NULL && !slow_blocked) {
                size_t n = 0;
                while (f->bad[n] != NULL) {
                    n++;
                }
                buf_str(&value, f->bad[below(n)]);
            } else {
                done = 0;
                break;
            }
            doc_set(d, key, value.data, value.len);
            describe("%s refused value", key);
            break;
        case 4: /* too long: a little, or up to half a mebibyte */
            if (f->max_len == 0) {
                done = 0;
                break;
            }
            {
                size_t prefix = strlen(f->long_prefix);
                size_t len = percent(85) ? f->max_len + 1 + below(16)
                                         : log_length(f->max_len + 1, WXPAY_MAX_INPUT_BYTES / 2);
                buf_add(&value, "\"", 1);
                buf_str(&value, f->long_prefix);
                buf_fill(&value, 'A', len > prefix ? len - prefix : 1);
                buf_add(&value, "\"", 1);
                doc_set(d, key, value.data, value.len);
                describe("%s of %zu bytes", key, len);
            }
            break;
        case 5: /* twice */
            if (!spec->duplicates_refused) {
                done = 0;
                break;
            }
            {
                char twin[64];
                snprintf(twin, sizeof twin, "%s", key);
                if (spec->case_insensitive && percent(50)) {
                    for (char *c = twin; *c; c++) {
                        *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
                    }
                }
                doc_add(d, twin, d->field[i].value.data, d->field[i].value.len);
                describe("%s twice", key);
            }
            break;
        case 6: /* an unknown key */
            if (!spec->unknown_keys_refused) {
                done = 0;
                break;
            }
            {
                char name[64];
                unknown_key(name, sizeof name);
                doc_add(d, name, "\"x\"", 3);
                describe("an unknown key");
            }
            break;
        default: /* a mutation of the document's own */
        {
            const struct extra *found[8];
            size_t n = 0;
            for (size_t k = 0; k < spec->extra_count && n < COUNT(found); k++) {
                if (strcasecmp(spec->extras[k].key, key) == 0) {
                    found[n++] = &spec->extras[k];
                }
            }
            if (n == 0) {
                done = 0;
                break;
            }
            const struct extra *e = found[below(n)];
            e->apply(d, i);
            describe("%s", e->name);
            slow = 0;
        } break;
        }
        buf_free(&value);
        if (done) {
            applied++;
            slow_applied |= slow;
            snprintf(touched[touched_count++], sizeof touched[0], "%s", key);
        }
    }
    return applied;
}

/* A malformed JSON argument made from `base` (at `out`: the bytes, with a
 * NUL terminator at `out->len`; the C string the library reads may end
 * sooner, at an embedded NUL). */
static void malformed_json(enum fn fn, const struct doc_spec *spec, const struct doc *base,
                           struct buf *out, int slow_ok) {
    struct doc d = {0};
    doc_copy(&d, base);
    buf_clear(out);
    unsigned choice = (unsigned)below(100);
    if (choice < 55) {
        /* Structural mutations, maybe padded with whitespace. */
        if (mutate_fields(&d, base, spec, slow_ok) == 0) {
            doc_free(&d);
            malformed_json(fn, spec, base, out, slow_ok);
            return;
        }
        doc_json(&d, out);
        if (percent(2)) {
            size_t len = log_length(out->len, 64 * 1024);
            buf_fill(out, PICK(((const char[]){' ', '\n', '\t', '\r'})), len - out->len);
            describe("padded to %zu bytes", out->len);
        }
    } else if (choice < 67) {
        /* Invalid UTF-8 anywhere. */
        if (percent(50)) {
            mutate_fields(&d, base, spec, 0);
        }
        doc_json(&d, out);
        insert_invalid_utf8(out, out->len);
        describe("invalid UTF-8");
    } else if (choice < 79) {
        /* An embedded NUL: what C reads is a proper prefix of an object. */
        if (percent(30)) {
            mutate_fields(&d, base, spec, 0);
        }
        doc_json(&d, out);
        size_t at = below(out->len);
        out->data[at] = '\0';
        if (percent(30)) {
            insert_invalid_utf8(out, out->len);
        }
        describe("a NUL at byte %zu", at);
    } else if (choice < 88) {
        /* Not JSON. */
        doc_json(&d, out);
        switch (below(7)) {
        case 0:
            out->len = below(out->len);
            out->data[out->len] = '\0';
            describe("cut at byte %zu", out->len);
            break;
        case 1:
            buf_str(out, PICK(((const char *const[]){" x", "}", ",", "{}", "]", "\"", " null"})));
            describe("trailing garbage");
            break;
        case 2:
            out->data[out->len - 1] = ',';
            buf_str(out, "}");
            describe("a trailing comma");
            break;
        case 3:
            buf_insert(out, 0, "\xef\xbb\xbf", 3);
            describe("a byte order mark");
            break;
        case 4:
            out->data[1] = '\'';
            describe("a single quote");
            break;
        case 5:
            buf_clear(out);
            buf_str(out, PICK(((const char *const[]){"", " ", "{", "}", "[", "nul", "tru", "'a'",
                                                     "{\"a\"}", "{\"a\":}", "{:1}", "{'a':1}",
                                                     "NaN", "-", "\"unterminated"})));
            describe("not JSON at all");
            break;
        default:
            memmove(out->data, out->data + 1, out->len);
            out->len--;
            describe("no opening brace");
            break;
        }
    } else if (choice < 99) {
        /* JSON of the wrong type at the top level. */
        struct buf inner = {0};
        doc_json(&d, &inner);
        buf_clear(out);
        switch (below(5)) {
        case 0:
            buf_str(out, "[");
            buf_add(out, inner.data, inner.len);
            buf_str(out, "]");
            break;
        case 1:
            buf_str(out, "{\"document\":");
            buf_add(out, inner.data, inner.len);
            buf_str(out, "}");
            if (!spec->unknown_keys_refused) { /* a nested object as a value */
                buf_clear(out);
                buf_str(out, "{\"Wechatpay-Serial\":");
                buf_add(out, inner.data, inner.len);
                buf_str(out, "}");
            }
            break;
        case 2:
            json_quote(out, inner.data, inner.len);
            break;
        default:
            buf_str(out, PICK(((const char *const[]){"null", "true", "false", "0", "-1", "1.5",
                                                     "[]", "\"\"", "\"order\"", "[[]]", "1e400"})));
            break;
        }
        buf_free(&inner);
        describe("not an object at the top level");
    } else {
        /* Longer than WXPAY_MAX_INPUT_BYTES (a handful per function), else a
         * malformed document padded with spaces. */
        int applied = mutate_fields(&d, base, spec, 0);
        doc_json(&d, out);
        if (applied == 0) {
            buf_insert(out, 1, ",", 1);
            describe("a comma first");
        }
        size_t len;
        if (tallies[fn].huge < HUGE_PER_FUNCTION) {
            tallies[fn].huge++;
            len = tallies[fn].huge <= 2 ? HUGE_BYTES
                                        : log_length(WXPAY_MAX_INPUT_BYTES + 1, HUGE_BYTES);
        } else {
            len = log_length(out->len, WXPAY_MAX_INPUT_BYTES);
        }
        if (len > out->len) {
            buf_fill(out, ' ', len - out->len);
        }
        describe("%zu bytes long", out->len);
    }
    doc_free(&d);
}

/* ------------------------------------------------------------ loopback HTTP */

/* Reads one HTTP/1.1 message (with a Content-Length, or up to the peer's
 * close) into `msg`; *head is the offset of its body. 0 on success. */
static int read_message(int fd, struct buf *msg, size_t *head) {
    size_t content_length = 0;
    int has_length = 0;
    *head = 0;
    for (;;) {
        if (*head != 0 && has_length && msg->len >= *head + content_length) {
            msg->len = *head + content_length;
            msg->data[msg->len] = '\0';
            return 0;
        }
        char chunk[4096];
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n == 0 && *head != 0 && !has_length) {
            return 0;
        }
        if (n <= 0 || msg->len > (1u << 20)) {
            return -1;
        }
        buf_add(msg, chunk, (size_t)n);
        if (*head == 0) {
            char *end = strstr(msg->data, "\r\n\r\n");
            if (end == NULL) {
                continue;
            }
            *head = (size_t)(end - msg->data) + 4;
            for (const char *line = strstr(msg->data, "\r\n"); line != NULL && line < end;
                 line = strstr(line + 2, "\r\n")) {
                if (strncasecmp(line + 2, "content-length:", 15) == 0) {
                    content_length = strtoul(line + 17, NULL, 10);
                    has_length = 1;
                }
            }
        }
    }
}

/* GETs the sandbox's `path`: the answer's status, its body in `body`; -1 on
 * failure. */
static int http_get(int port, const char *path, struct buf *body) {
    int fd = connect_loopback(port);
    if (fd < 0) {
        return -1;
    }
    struct buf request = {0};
    buf_printf(&request, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
               path, port);
    int status = -1;
    struct buf answer = {0};
    size_t head = 0;
    if (write_all(fd, request.data, request.len) == 0 && read_message(fd, &answer, &head) == 0 &&
        sscanf(answer.data, "HTTP/1.%*d %d", &status) == 1) {
        buf_add(body, answer.data + head, answer.len - head);
    }
    buf_free(&request);
    buf_free(&answer);
    close(fd);
    return status;
}

/* The sandbox's count of accepted connections, or -1. */
static long sandbox_connections(int port) {
    struct buf body = {0};
    long count = -1;
    if (http_get(port, "/sandbox/stats", &body) == 200) {
        const char *at = strstr(body.data, "\"connections\":");
        if (at != NULL) {
            count = strtol(at + 14, NULL, 10);
        }
    }
    buf_free(&body);
    return count;
}

/* ------------------------------------------------------------ the valid documents */

struct bases {
    struct doc config[4];     /* legacy, v2 MD5, v2 HMAC-SHA256, v3 */
    struct doc order[4];
    struct doc ref[2];
    struct doc refund[3];
    struct doc payment;       /* a signed v2 payment notification (XML fields) */
    uint64_t payment_fee;
    struct doc refund_note;   /* a v2 refund notification (XML fields) */
    struct doc headers;       /* the v3 notification's headers */
    struct buf v3_body;       /* and its body */
    const WxPayClient *legacy;
    const WxPayClient *v2;
    const WxPayClient *v2_other; /* another merchant id */
    const WxPayClient *v3;
};

/* The refund notification of sandbox merchant 10000100: refund MFR1 of 999
 * fen of order MF1 (1999 fen), its req_info encrypted (AES-256-ECB) with
 * the sandbox's published API key. */
#define REFUND_FEE 999
static const char REFUND_REQ_INFO[] =
    "WBzGpzQuNpcFxIlFjUUD9OO/2Ktb7gpDXJEHnS0HAw4dP5Vv9AgbEPImPO1GdgBIDXXTmvwp6zzYLUD7V6zTHA1z7Lw"
    "NwaqgMRy8JLf9YtnCID8R0fUwl/md2wo6cobNGZc2eCB52LmwZTReQxG6kPI8BXMnwLhuLLo8JEd+sdz+8zTKcNlu6H+"
    "Wtokcs9DM+R/XrDppbT9uZtU8AJ1o8cymkHeQawkPn4UGpijx1Jk6HweMxhtD/Kagu5+5MhLIV/lNOIiL21buDWJEmI"
    "rdTC9m9FRrILIh5RUGHn6WE9Jxi+JTLZq62A2/t2ZM1JLGntD3Aj22f+b3QjYjHHBygOGwiE/8vLAGEqNMkV76TDI2lj"
    "oh4mSvY0uAzWFQtnwBPj7XdshysKQDIM28m4/RWiy4iMxnUTZIDMuME4s7HSgVLw2/lH8Stk6S+thxDJLkGO3PBrqfP1"
    "mbX96WiG09BarVGyvyiBQC1Z/Pyk5bjpGYkRt2GzReP2h4ef536WZETXV55u92O8zFBhsnaW/Y9I7/hnHfAvykr6IvDp"
    "0zNKKdEFRkmPkPTlnVnZsJiZyIqOEaZVasPsN89PkQO80a8yNcWERc3npClOM3/nf1izpPvKFgFl0fEzV/7kZLeFiB4v"
    "2dix2RzE0VmEg0nsimJbpxf8T099LEwVcXoJ914RKkIqv9VwRmyDnu21Ypjfhoye5wDTWZFpGtf6MO+N3DsfzXPh1c2o"
    "7DwVCoGE++TsO0MQ4SvTw/oDPUbubhyybvrafUMT6XmbS9atB3L6Hh5ZJl4H4sfiimT6DxFFcQV0waW9J665iP2ao+1z"
    "wj32AW0d+qQfkgMB6/YxcsyT+72lR7vA+RHQo3cSg1gNTsa2XDZvuLrwmdwF3RwwU8+CAtKPxy5tVM40kvaba/MXtGkx"
    "xzscdMvnsm5irUO3eTk8ePybCTJorz3YKGMPIQWliooh7WNnTLJkvK0b9041n553E6gBPYA9Gpt3Dh+GmyYWo=";

/* Signs the v2 payment notification `d` (its `sign` replaced). */
static void sign_payment(struct doc *d) {
    struct buf params = {0};
    doc_sign_params(d, &params);
    char *sign = NULL;
    if (wxpay_sign("v2-md5", SANDBOX_API_KEY, params.data, &sign, NULL) != WXPAY_OK) {
        die("wxpay_sign refused a notification's fields");
    }
    doc_set_str(d, "sign", sign);
    wxpay_string_free(sign);
    buf_free(&params);
}

/* ------------------------------------------------------------ the functions */

/* Any of the clients. */
static const WxPayClient *any_client(const struct bases *b) {
    const WxPayClient *all[] = {b->legacy, b->v2, b->v2_other, b->v3};
    return PICK(all);
}

/* An out_error pointer, or NULL (one call in eight). */
static char **maybe_error(char **error, int *asked) {
    *error = SENTINEL;
    *asked = !percent(12);
    return *asked ? error : NULL;
}

static void run_static_strings(void) {
    const char *version = wxpay_version();
    for (int i = 0; i < CALLS; i++) {
        what[0] = '\0';
        const char *v = wxpay_version();
        tallies[FN_VERSION].calls++;
        if (v == NULL || v[0] == '\0' || v != version) {
            wrong(FN_VERSION, "not the same non-empty static string");
        }
    }
    static const int32_t codes[] = {0,    1001, 1002, 1003, 1101, 1102, 1103, 1104, 1105,
                                    1201, 1202, 1203, 1204, 1205, 1206, 1901, 1902};
    static const char *const names[] = {
        "ok",          "null_argument",  "invalid_utf8",   "input_too_long",
        "invalid_json", "invalid_config", "invalid_order", "invalid_argument",
        "invalid_notification", "network", "http_status", "gateway",
        "malformed_response", "token_store", "rejected", "panic", "internal"};
    static const int32_t edges[] = {INT32_MIN, INT32_MIN + 1, -1001, -1, 1, 2, 999, 1000, 1004,
                                    1100, 1106, 1200, 1207, 1900, 1903, 2000, 10000, INT32_MAX};
    for (int i = 0; i < CALLS; i++) {
        int32_t code;
        switch (i < (int)COUNT(codes) ? 0 : i < (int)(COUNT(codes) + COUNT(edges)) ? 1 : 2) {
        case 0:
            code = codes[i];
            break;
        case 1:
            code = edges[i - (int)COUNT(codes)];
            break;
        default:
            code = percent(50) ? (int32_t)(uint32_t)next_u64() : (int32_t)between(0, 3000) - 500;
            break;
        }
        snprintf(what, sizeof what, "code %" PRId32, code);
        const char *expected_name = "unknown";
        for (size_t k = 0; k < COUNT(codes); k++) {
            if (codes[k] == code) {
                expected_name = names[k];
            }
        }
        const char *name = wxpay_result_name(code);
        const char *message = wxpay_result_message(code);
        tallies[FN_RESULT_NAME].calls++;
        tallies[FN_RESULT_MESSAGE].calls++;
        if (name == NULL || strcmp(name, expected_name) != 0) {
            wrong(FN_RESULT_NAME, "not the code's static name");
        }
        int unknown = strcmp(expected_name, "unknown") == 0;
        if (message == NULL || message[0] == '\0' ||
            (strcmp(message, "unknown result code") == 0) != unknown) {
            wrong(FN_RESULT_MESSAGE, "not the code's static message");
        }
    }
    for (int i = 0; i < CALLS; i++) {
        wxpay_string_free(NULL);
        tallies[FN_STRING_FREE].calls++;
        wxpay_client_free(NULL);
        tallies[FN_CLIENT_FREE].calls++;
    }
}

static void run_client_new(const struct bases *b) {
    struct buf text = {0};
    for (int i = 0; i < CALLS; i++) {
        what[0] = '\0';
        static const char *const names[] = {"legacy", "v2 MD5", "v2 HMAC-SHA256", "v3"};
        static const struct doc_spec *const specs[] = {&CONFIG_LEGACY_SPEC, &CONFIG_V2_SPEC,
                                                       &CONFIG_V2_SPEC, &CONFIG_V3_SPEC};
        size_t generation = below(4);
        const struct doc *base = &b->config[generation];
        const struct doc_spec *spec = specs[generation];
        int slow_ok = tallies[FN_CLIENT_NEW].slow < SLOW_PER_FUNCTION;
        describe("%s config", names[generation]);
        const char *config;
        unsigned kind = (unsigned)below(100);
        if (kind < 6) {
            config = NULL;
            describe("NULL config_json");
        } else {
            slow_applied = 0;
            malformed_json(FN_CLIENT_NEW, spec, base, &text, slow_ok);
            tallies[FN_CLIENT_NEW].slow += slow_applied;
            config = text.data;
        }
        WxPayClient *client = SENTINEL;
        char *error;
        int asked;
        char **out_error = maybe_error(&error, &asked);
        int32_t rc;
        if (kind >= 6 && kind < 12) {
            /* A NULL out_client, with a valid configuration or not. */
            if (percent(50)) {
                struct buf valid = {0};
                doc_json(base, &valid);
                rc = wxpay_client_new(valid.data, NULL, out_error);
                buf_free(&valid);
                snprintf(what, sizeof what, "a valid config, NULL out_client");
            } else {
                rc = wxpay_client_new(config, NULL, out_error);
                describe("NULL out_client");
            }
            client = NULL;
        } else {
            rc = wxpay_client_new(config, &client, out_error);
        }
        int null = client == NULL;
        if (!null && client != SENTINEL) {
            wxpay_client_free(client);
        }
        judge(FN_CLIENT_NEW, rc, null, asked, error);
    }
    buf_free(&text);
}

/* The JSON-taking calls of a client: build_pay_params, query_order,
 * query_refunds and refund. */
typedef int32_t (*json_call)(const WxPayClient *, const char *, char **, char **);

static void run_json_call(enum fn fn, json_call call, const struct doc_spec *spec,
                          const struct doc *bases, size_t base_count,
                          const WxPayClient *const *valid_clients, size_t valid_count,
                          const WxPayClient *const *wrong_clients, size_t wrong_count) {
    struct buf text = {0};
    struct buf valid = {0};
    for (int i = 0; i < CALLS; i++) {
        what[0] = '\0';
        const struct doc *base = &bases[below(base_count)];
        buf_clear(&valid);
        doc_json(base, &valid);
        const WxPayClient *client = valid_clients[below(valid_count)];
        const char *arg;
        char *out = SENTINEL;
        char **out_json = &out;
        unsigned kind = (unsigned)below(100);
        if (kind < 4) {
            client = NULL;
            arg = percent(50) ? valid.data : NULL;
            describe("NULL client%s", arg ? "" : ", NULL argument");
        } else if (kind < 8) {
            arg = NULL;
            describe("NULL %s", spec->argument);
        } else if (kind < 12) {
            arg = valid.data;
            out_json = NULL;
            out = NULL;
            describe("a valid %s, NULL out_json", spec->argument);
        } else if (kind < 16 && wrong_count > 0) {
            client = wrong_clients[below(wrong_count)];
            arg = valid.data;
            describe("a valid %s, a client of another API generation", spec->argument);
        } else {
            malformed_json(fn, spec, base, &text, 0);
            arg = text.data;
        }
        char *error;
        int asked;
        char **out_error = maybe_error(&error, &asked);
        int32_t rc = call(client, arg, out_json, out_error);
        judge(fn, rc, take_null(out), asked, error);
    }
    buf_free(&text);
    buf_free(&valid);
}

static void run_sign(void) {
    static const char *const schemes[] = {"legacy-package", "legacy-sha1", "v2-md5",
                                          "v2-hmac-sha256"};
    static const char *const keys[] = {SANDBOX_PARTNER_KEY, SANDBOX_APP_KEY, SANDBOX_API_KEY,
                                       SANDBOX_API_KEY};
    static const char *const params[] = {
        "{\"appid\":\"wx1\",\"noncestr\":\"n\",\"timestamp\":1399514976}",
        "{\"bank_type\":\"WX\",\"body\":\"\xe6\x94\xaf\xe4\xbb\x98\xe6\xb5\x8b\xe8\xaf\x95\","
        "\"fee_type\":\"1\",\"input_charset\":\"UTF-8\",\"notify_url\":\"http://weixin.qq.com\","
        "\"out_trade_no\":\"7240b65810859cbf2a8d9f76a638c0a3\",\"partner\":\"1900000109\","
        "\"spbill_create_ip\":\"196.168.1.1\",\"total_fee\":\"1\"}",
        "{\"appid\":\"" SANDBOX_APPID "\",\"mch_id\":\"" SANDBOX_MCH_ID "\",\"nonce_str\":\"m\","
        "\"out_trade_no\":\"MF1\",\"total_fee\":1999}",
    };
    struct buf scheme = {0};
    struct buf key = {0};
    struct buf text = {0};
    struct doc base = {0};
    for (int i = 0; i < CALLS; i++) {
        what[0] = '\0';
        size_t s = below(COUNT(schemes));
        buf_clear(&scheme);
        buf_str(&scheme, schemes[s]);
        buf_clear(&key);
        buf_str(&key, keys[s]);
        doc_free(&base);
        doc_parse(&base, params[below(COUNT(params))]);
        buf_clear(&text);
        doc_json(&base, &text);
        /* The buffers may move while they are mutated: the arguments are
         * taken just before the call. */
        int scheme_null = 0;
        int key_null = 0;
        int params_null = 0;
        char *out = SENTINEL;
        char **out_sign = &out;
        unsigned kind = (unsigned)below(100);
        if (kind < 12) {
            switch (below(4)) {
            case 0:
                scheme_null = 1;
                describe("NULL scheme");
                break;
            case 1:
                key_null = 1;
                describe("NULL key");
                break;
            case 2:
                params_null = 1;
                describe("NULL params_json");
                break;
            default:
                out_sign = NULL;
                out = NULL;
                describe("NULL out_sign");
                break;
            }
        } else if (kind < 37) {
            /* An unknown scheme. */
            switch (below(6)) {
            case 0:
                scheme.data[below(scheme.len)] ^= 0x20;
                describe("a scheme in another case");
                break;
            case 1:
                buf_str(&scheme, PICK(((const char *const[]){" ", "-", "x", "\n", "2"})));
                describe("a scheme with a suffix");
                break;
            case 2:
                scheme.data[below(scheme.len)] = '\0';
                describe("a scheme cut by a NUL");
                break;
            case 3:
                buf_clear(&scheme);
                buf_str(&scheme, PICK(((const char *const[]){"", "md5", "sha1", "MD5",
                                                             "HMAC-SHA256", "legacy", "v2",
                                                             "v3-rsa", "legacy_sha1"})));
                describe("an unknown scheme");
                break;
            case 4:
                insert_invalid_utf8(&scheme, scheme.len);
                describe("a scheme with invalid UTF-8");
                break;
            default:
                buf_fill(&scheme, 'x', log_length(1, WXPAY_MAX_INPUT_BYTES / 4));
                describe("a scheme of %zu bytes", scheme.len);
                break;
            }
        } else if (kind < 55) {
            /* An empty or unreadable key. */
            switch (below(4)) {
            case 0:
                buf_clear(&key);
                describe("an empty key");
                break;
            case 1:
                key.data[0] = '\0';
                describe("a key cut to nothing by a NUL");
                break;
            case 2:
                insert_invalid_utf8(&key, key.len);
                describe("a key with invalid UTF-8");
                break;
            default:
                if (tallies[FN_SIGN].huge < HUGE_PER_FUNCTION) {
                    tallies[FN_SIGN].huge++;
                    buf_fill(&key, 'k', log_length(WXPAY_MAX_INPUT_BYTES + 1, HUGE_BYTES) - key.len);
                    describe("a key of %zu bytes", key.len);
                } else {
                    key.data[0] = '\0';
                    describe("a key cut to nothing by a NUL");
                }
                break;
            }
        } else if (kind < 62 && s <= 1) {
            /* A field the scheme refuses. */
            doc_set_str(&base, s == 1 ? "appkey" : "input_charset",
                        s == 1 ? "\"x\"" : PICK(((const char *const[]){"\"latin1\"", "\"UTF-16\"",
                                                                        "\"\"", "\"GB2312\""})));
            buf_clear(&text);
            doc_json(&base, &text);
            describe(s == 1 ? "appkey among the params" : "an unknown input_charset");
        } else {
            malformed_json(FN_SIGN, &PARAMS_SPEC, &base, &text, 0);
        }
        char *error;
        int asked;
        char **out_error = maybe_error(&error, &asked);
        int32_t rc = wxpay_sign(scheme_null ? NULL : scheme.data, key_null ? NULL : key.data,
                                params_null ? NULL : text.data, out_sign, out_error);
        judge(FN_SIGN, rc, take_null(out), asked, error);
    }
    doc_free(&base);
    buf_free(&scheme);
    buf_free(&key);
    buf_free(&text);
}

static void run_close_order(const struct bases *b) {
    static const char *const bad_chars[] = {" ", ".", "/", "%", "\"", "\\", "+", "#", "\t", "\n",
                                            "\x01", "\x7f", "\xe8\xae\xa2", "\xc3\xa5", "="};
    struct buf no = {0};
    for (int i = 0; i < CALLS; i++) {
        what[0] = '\0';
        buf_clear(&no);
        buf_str(&no, PICK(((const char *const[]){"ABUSE1", "MALFORMED1", "A-1_2|3*4@5"})));
        const WxPayClient *client = percent(50) ? b->v2 : b->v3;
        int arg_null = 0; /* the buffer may move: taken just before the call */
        unsigned kind = (unsigned)below(100);
        if (kind < 5) {
            client = NULL;
            describe("NULL client");
        } else if (kind < 10) {
            arg_null = 1;
            describe("NULL out_trade_no");
        } else if (kind < 15) {
            client = b->legacy;
            describe("a valid out_trade_no, a 2014-flow client");
        } else if (kind < 25) {
            buf_clear(&no);
            describe("empty");
        } else if (kind < 45) {
            const char *c = PICK(bad_chars);
            buf_insert(&no, below(no.len + 1), c, strlen(c));
            describe("a character outside A-Z a-z 0-9 _ - | * @");
        } else if (kind < 60) {
            size_t len = percent(85) ? 33 + below(32) : log_length(33, WXPAY_MAX_INPUT_BYTES);
            if (tallies[FN_CLOSE_ORDER].huge < HUGE_PER_FUNCTION && percent(5)) {
                tallies[FN_CLOSE_ORDER].huge++;
                len = log_length(WXPAY_MAX_INPUT_BYTES + 1, HUGE_BYTES);
            }
            buf_fill(&no, 'A', len - no.len);
            describe("%zu characters", no.len);
        } else if (kind < 72) {
            insert_invalid_utf8(&no, no.len);
            describe("invalid UTF-8");
        } else if (kind < 84) {
            /* What C reads before the NUL is empty or has a refused character. */
            if (percent(50)) {
                no.data[0] = '\0';
                describe("a NUL first");
            } else {
                size_t at = below(no.len);
                no.data[at] = ' ';
                buf_insert(&no, at + 1, "\0", 1);
                describe("a space then a NUL");
            }
        } else {
            buf_clear(&no);
            buf_str(&no, PICK(((const char *const[]){"{\"out_trade_no\":\"ABUSE1\"}", "\"ABUSE1\"",
                                                     "[\"ABUSE1\"]", "ABUSE1,ABUSE2"})));
            describe("JSON instead of a number");
        }
        char *error;
        int asked;
        char **out_error = maybe_error(&error, &asked);
        int32_t rc = wxpay_close_order(client, arg_null ? NULL : no.data, out_error);
        judge(FN_CLOSE_ORDER, rc, 1, asked, error);
    }
    buf_free(&no);
}

/* A malformed v2 notification body (XML) made from `base` (fields), for a
 * verifier; `payment`: a signed payment notification (else a refund one,
 * which only its ids and req_info authenticate). */
static void malformed_notification(const struct doc *base, int payment, struct buf *body) {
    struct doc d = {0};
    doc_copy(&d, base);
    buf_clear(body);
    static const char *const checked_refund_fields[] = {"return_code", "appid", "mch_id",
                                                        "req_info"};
    unsigned kind = (unsigned)below(100);
    if (kind < 40) {
        /* Fields changed. */
        int resign = payment && percent(40);
        switch (below(resign ? 4 : 6)) {
        case 0: { /* the merchant's ids or the return_code */
            const char *key = PICK(((const char *const[]){"appid", "mch_id", "return_code"}));
            int i = doc_find(&d, key);
            if (percent(20) && i >= 0) {
                doc_remove(&d, (size_t)i);
                describe("%s removed", key);
            } else {
                doc_set_str(&d, key,
                            strcmp(key, "return_code") == 0
                                ? PICK(((const char *const[]){"FAIL", "", "success", "SUCCESS "}))
                                : PICK(((const char *const[]){"", "wx0000000000000000", "10000101",
                                                              "1900000109", " 10000100"})));
                describe("%s changed", key);
            }
            break;
        }
        case 1: /* payment: an amount that is not a positive integer of fen;
                   refund: req_info that cannot decrypt */
            if (payment) {
                doc_set_str(&d, "total_fee",
                            PICK(((const char *const[]){"0", "-1", "01", "1.5", "1e2", "", " 1",
                                                        "1 ", "+1", "abc", "2147483648",
                                                        "99999999999", "\xef\xbc\x91",
                                                        "0x10", "1999.00"})));
                describe("total_fee not an amount");
            } else {
                int i = doc_find(&d, "req_info");
                struct buf *v = &d.field[i].value;
                switch (below(4)) {
                case 0:
                    doc_remove(&d, (size_t)i);
                    describe("req_info removed");
                    break;
                case 1:
                    buf_insert(v, below(v->len + 1),
                               PICK(((const char *const[]){"*", "!", "-", "_", "%", ".", "~"})),
                               1);
                    describe("req_info not base64");
                    break;
                case 2: /* four characters fewer: 3 bytes, not whole AES blocks */
                {
                    size_t at = 4 * below(v->len / 4 - 1);
                    memmove(v->data + at, v->data + at + 4, v->len - at - 3);
                    v->len -= 4;
                    describe("req_info 3 bytes short of whole blocks");
                } break;
                default:
                    buf_clear(v);
                    buf_str(v, PICK(((const char *const[]){"", "AAAA", "QUJD", "=", "===="})));
                    describe("req_info too short");
                    break;
                }
            }
            break;
        case 2: /* payment: an id the notification needs, empty or too long */
            if (payment) {
                const char *key = percent(50) ? "out_trade_no" : "transaction_id";
                if (percent(30)) {
                    doc_remove(&d, (size_t)doc_find(&d, key));
                    describe("%s removed", key);
                } else {
                    struct buf long_id = {0};
                    if (percent(50)) {
                        buf_fill(&long_id, '7', 65 + below(200));
                    }
                    doc_set_str(&d, key, long_id.data ? long_id.data : "");
                    describe("%s empty or too long", key);
                    buf_free(&long_id);
                }
            } else {
                doc_remove(&d, (size_t)doc_find(&d, "req_info"));
                describe("req_info removed");
            }
            break;
        case 3: /* payment: no amount; refund: the ids removed */
        {
            const char *key = payment ? "total_fee" : PICK(((const char *const[]){"appid", "mch_id"}));
            doc_remove(&d, (size_t)doc_find(&d, key));
            describe("%s removed", key);
        } break;
        case 4: /* (payment, not signed again) a signed field changed, removed or added */
        {
            size_t i = below(d.count);
            if (strcmp(d.field[i].key, "sign") == 0) {
                struct buf *v = &d.field[i].value;
                if (percent(30)) {
                    doc_remove(&d, i);
                    describe("sign removed");
                } else {
                    size_t at = below(v->len);
                    v->data[at] = v->data[at] == '0' ? '1' : '0';
                    describe("sign changed");
                }
            } else if (percent(40)) {
                doc_remove(&d, i);
                describe("a signed field removed");
            } else if (percent(50)) {
                buf_str(&d.field[i].value, "0");
                describe("a signed field changed");
            } else {
                char key[32];
                snprintf(key, sizeof key, "x_%06" PRIx64, next_u64() & 0xffffff);
                doc_add(&d, key, "1", 1);
                describe("an unsigned field added");
            }
            if (!payment) { /* a refund notification: make sure it is refused */
                doc_set_str(&d, "return_code", "FAIL");
            }
        } break;
        default: /* a field twice */
        {
            size_t i = below(d.count);
            doc_add(&d, d.field[i].key, d.field[i].value.data, d.field[i].value.len);
            describe("%s twice", d.field[i].key);
        } break;
        }
        if (resign) {
            sign_payment(&d);
            describe("signed again");
        }
        doc_xml(&d, body);
    } else if (kind < 55) {
        /* A NUL or invalid UTF-8 inside a checked field's value. */
        const char *key = payment ? d.field[below(d.count)].key : PICK(checked_refund_fields);
        int i = doc_find(&d, key);
        struct buf *v = &d.field[i].value;
        if (percent(50)) {
            buf_insert(v, below(v->len + 1), "\0", 1);
            describe("a NUL inside %s", key);
        } else {
            insert_invalid_utf8(v, v->len);
            describe("invalid UTF-8 inside %s", key);
        }
        doc_xml(&d, body);
    } else if (kind < 75) {
        /* Not a flat <xml> message. */
        doc_xml(&d, body);
        switch (below(8)) {
        case 0:
            body->len = below(body->len);
            describe("cut at byte %zu", body->len);
            break;
        case 1:
            buf_str(body, PICK(((const char *const[]){"x", "<xml></xml>", "<a>1</a>", "]]>"})));
            describe("text after the message");
            break;
        case 2:
        {
            const char *doctype = "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY e SYSTEM "
                                  "\"file:///etc/passwd\">]>";
            buf_insert(body, 0, doctype, strlen(doctype));
        }
            describe("a DOCTYPE");
            break;
        case 3:
            buf_insert(body, 4, " a=\"1\"", 6);
            describe("an attribute");
            break;
        case 4:
            buf_insert(body, 5, "<nested><a>1</a></nested>", 25);
            describe("a nested element");
            break;
        case 5:
            memcpy(body->data + 1, "XML", 3);
            describe("another root element");
            break;
        case 6:
            buf_insert(body, 5, "<a>&e;</a>", 10);
            describe("an undeclared entity");
            break;
        default:
            buf_clear(body);
            buf_str(body, PICK(((const char *const[]){
                              "", "{\"return_code\":\"SUCCESS\"}", "return_code=SUCCESS&sign=x",
                              "<xml>", "</xml>", "<xml/>", "<>", "\xef\xbb\xbf"})));
            describe("not XML");
            break;
        }
    } else if (kind < 82) {
        /* Larger than the verifier reads (64 KiB), up to WXPAY_MAX_INPUT_BYTES. */
        doc_xml(&d, body);
        size_t len = log_length(64 * 1024 + 1, WXPAY_MAX_INPUT_BYTES);
        buf_insert(body, 5, "<pad>", 5);
        struct buf pad = {0};
        buf_fill(&pad, 'p', len > body->len + 6 ? len - body->len - 6 : 1);
        buf_str(&pad, "</pad>");
        buf_insert(body, 10, pad.data, pad.len);
        buf_free(&pad);
        describe("%zu bytes", body->len);
    } else {
        /* Not the fields at all: a random message, or another message with
         * a valid shape but nothing the verifier needs. */
        struct doc other = {0};
        size_t fields = below(6);
        for (size_t k = 0; k < fields; k++) {
            char key[32];
            char value[32];
            snprintf(key, sizeof key, "f%zu", k);
            snprintf(value, sizeof value, "%" PRIx64, next_u64());
            doc_add(&other, key, value, strlen(value));
        }
        doc_xml(&other, body);
        doc_free(&other);
        describe("a message of %zu other fields", fields);
    }
    doc_free(&d);
}

typedef int32_t (*verify_call)(const WxPayClient *, const uint8_t *, uint64_t, int64_t, char **,
                               char **);

/* A length past WXPAY_MAX_INPUT_BYTES, for a buffer that is never read. */
static uint64_t length_past_limit(void) {
    switch (below(3)) {
    case 0:
        return (uint64_t)WXPAY_MAX_INPUT_BYTES + 1 + below(64);
    case 1:
        return between((uint64_t)WXPAY_MAX_INPUT_BYTES + 1, UINT64_MAX);
    default:
        return UINT64_MAX - below(4);
    }
}

static void run_verify(enum fn fn, verify_call call, const struct bases *b, int payment) {
    const struct doc *base = payment ? &b->payment : &b->refund_note;
    uint64_t fee = payment ? b->payment_fee : REFUND_FEE;
    struct buf body = {0};
    struct buf valid = {0};
    static const uint8_t one[1] = {'<'};
    for (int i = 0; i < CALLS; i++) {
        what[0] = '\0';
        buf_clear(&valid);
        doc_xml(base, &valid);
        const WxPayClient *client = b->v2;
        const uint8_t *data = (const uint8_t *)valid.data;
        uint64_t len = valid.len;
        int64_t expected = percent(50) ? (int64_t)fee : -(int64_t)below(3);
        char *out = SENTINEL;
        char **out_json = &out;
        unsigned kind = (unsigned)below(100);
        if (kind < 4) {
            client = NULL;
            describe("NULL client");
        } else if (kind < 8) {
            data = NULL;
            len = percent(50) ? 0 : between(1, 1u << 20);
            describe("NULL body, length %" PRIu64, len);
        } else if (kind < 11) {
            out_json = NULL;
            out = NULL;
            describe("a valid body, NULL out_json");
        } else if (kind < 16) {
            client = payment ? (percent(50) ? b->v3 : b->legacy)
                             : PICK(((const WxPayClient *const[]){b->v3, b->legacy, b->v2_other}));
            describe("a valid body, a client of another API generation or merchant");
        } else if (kind < 24) {
            /* Every bad expected amount: another amount, or more than 2^31-1. */
            if (percent(50)) {
                uint64_t other = between(1, UINT64_C(2147483646));
                expected = (int64_t)(other >= fee ? other + 1 : other);
                describe("expected %" PRId64 " fen, not %" PRIu64, expected, fee);
            } else {
                expected = percent(50) ? (int64_t)between(UINT64_C(2147483648), INT64_MAX)
                                       : PICK(((const int64_t[]){INT64_MAX, (int64_t)1 << 31,
                                                                 (int64_t)1 << 32}));
                describe("expected %" PRId64 " fen", expected);
            }
        } else if (kind < 28) {
            data = percent(50) ? one : (const uint8_t *)valid.data;
            len = length_past_limit();
            describe("length %" PRIu64 " past the buffer", len);
        } else if (kind < 32) {
            len = below(valid.len);
            describe("length %" PRIu64 " of %zu", len, valid.len);
        } else if (kind < 34 && tallies[fn].huge < HUGE_PER_FUNCTION) {
            tallies[fn].huge++;
            buf_clear(&body);
            buf_fill(&body, '<', log_length(WXPAY_MAX_INPUT_BYTES + 1, HUGE_BYTES));
            data = (const uint8_t *)body.data;
            len = body.len;
            describe("%zu bytes", body.len);
        } else {
            malformed_notification(base, payment, &body);
            data = (const uint8_t *)body.data;
            len = body.len;
        }
        char *error;
        int asked;
        char **out_error = maybe_error(&error, &asked);
        int32_t rc = call(client, data, len, expected, out_json, out_error);
        judge(fn, rc, take_null(out), asked, error);
    }
    buf_free(&body);
    buf_free(&valid);
}

static void run_verify_signed(const struct bases *b) {
    struct buf headers = {0};
    struct buf valid_headers = {0};
    struct buf body = {0};
    static const uint8_t one[1] = {'{'};
    doc_json(&b->headers, &valid_headers);
    for (int i = 0; i < CALLS; i++) {
        what[0] = '\0';
        const WxPayClient *client = b->v3;
        const char *headers_arg = valid_headers.data;
        buf_clear(&body);
        buf_add(&body, b->v3_body.data, b->v3_body.len);
        /* The body is taken just before the call (its buffer may move). */
        enum { BODY, NO_BODY, ONE_BYTE } data = BODY;
        uint64_t len = body.len;
        int64_t expected = percent(50) ? V3_ORDER_FEE : -(int64_t)below(3);
        char *out = SENTINEL;
        char **out_json = &out;
        unsigned kind = (unsigned)below(100);
        if (kind < 3) {
            client = NULL;
            describe("NULL client");
        } else if (kind < 6) {
            headers_arg = NULL;
            describe("NULL headers_json");
        } else if (kind < 9) {
            data = NO_BODY;
            len = percent(50) ? 0 : len;
            describe("NULL body");
        } else if (kind < 12) {
            out_json = NULL;
            out = NULL;
            describe("a valid notification, NULL out_json");
        } else if (kind < 16) {
            client = percent(50) ? b->v2 : b->legacy;
            describe("a valid notification, a client of another API generation");
        } else if (kind < 24) {
            if (percent(50)) {
                uint64_t other = between(1, UINT64_C(2147483646));
                expected = (int64_t)(other >= V3_ORDER_FEE ? other + 1 : other);
            } else {
                expected = (int64_t)between(UINT64_C(2147483648), INT64_MAX);
            }
            describe("expected %" PRId64 " fen", expected);
        } else if (kind < 28) {
            data = percent(50) ? ONE_BYTE : BODY;
            len = length_past_limit();
            describe("length %" PRIu64 " past the buffer", len);
        } else if (kind < 55) {
            /* The body changed: the signature covers every byte. */
            switch (below(6)) {
            case 0:
                body.data[below(body.len)] ^= (char)(1 + below(0x7e));
                describe("one byte of the body changed");
                break;
            case 1:
                len = below(body.len);
                describe("the body cut to %" PRIu64 " bytes", len);
                break;
            case 2:
                buf_str(&body, PICK(((const char *const[]){" ", "\n", "x", "}", "\r\n"})));
                len = body.len;
                describe("the body extended");
                break;
            case 3:
                buf_insert(&body, below(body.len + 1), "\0", 1);
                len = body.len;
                describe("a NUL in the body");
                break;
            case 4:
                insert_invalid_utf8(&body, body.len);
                len = body.len;
                describe("invalid UTF-8 in the body");
                break;
            default:
                if (tallies[FN_VERIFY_SIGNED].huge < HUGE_PER_FUNCTION) {
                    tallies[FN_VERIFY_SIGNED].huge++;
                    buf_fill(&body, ' ', log_length(WXPAY_MAX_INPUT_BYTES + 1, HUGE_BYTES));
                } else {
                    buf_fill(&body, ' ', log_length(1, WXPAY_MAX_INPUT_BYTES - body.len));
                }
                len = body.len;
                describe("the body padded to %zu bytes", body.len);
                break;
            }
        } else {
            malformed_json(FN_VERIFY_SIGNED, &HEADER_SPEC, &b->headers, &headers, 0);
            headers_arg = headers.data;
        }
        char *error;
        int asked;
        char **out_error = maybe_error(&error, &asked);
        const uint8_t *bytes = data == BODY       ? (const uint8_t *)body.data
                               : data == ONE_BYTE ? one
                                                  : NULL;
        int32_t rc = wxpay_verify_signed_notification(client, headers_arg, bytes, len, expected,
                                                      out_json, out_error);
        judge(FN_VERIFY_SIGNED, rc, take_null(out), asked, error);
    }
    buf_free(&headers);
    buf_free(&valid_headers);
    buf_free(&body);
}

static void run_download_certificates(const struct bases *b) {
    for (int i = 0; i < CALLS; i++) {
        what[0] = '\0';
        const WxPayClient *client = NULL;
        int32_t count = 7;
        int32_t *out_count = &count;
        switch (below(4)) {
        case 0:
            describe("NULL client");
            break;
        case 1:
            client = any_client(b);
            out_count = NULL;
            describe("NULL out_count");
            break;
        case 2:
            client = b->legacy;
            describe("a 2014-flow client");
            break;
        default:
            client = percent(50) ? b->v2 : b->v2_other;
            describe("an API v2 client");
            break;
        }
        char *error;
        int asked;
        char **out_error = maybe_error(&error, &asked);
        int32_t rc = wxpay_download_certificates(client, out_count, out_error);
        judge(FN_DOWNLOAD_CERTIFICATES, rc, out_count == NULL || count == 0, asked, error);
    }
}

static void run_replies(const struct bases *b) {
    for (int i = 0; i < CALLS; i++) {
        what[0] = '\0';
        const WxPayClient *client = any_client(b);
        char *reply = SENTINEL;
        char **out_reply = &reply;
        switch (below(3)) {
        case 0:
            client = NULL;
            describe("NULL client");
            break;
        case 1:
            out_reply = NULL;
            reply = NULL;
            describe("NULL out_reply");
            break;
        default:
            client = NULL;
            out_reply = NULL;
            reply = NULL;
            describe("NULL client and out_reply");
            break;
        }
        char *error;
        int asked;
        char **out_error = maybe_error(&error, &asked);
        int32_t rc = wxpay_notification_success_reply(client, out_reply, out_error);
        judge(FN_SUCCESS_REPLY, rc, take_null(reply), asked, error);
    }
    struct buf reason = {0};
    for (int i = 0; i < CALLS; i++) {
        what[0] = '\0';
        const WxPayClient *client = any_client(b);
        buf_clear(&reason);
        buf_str(&reason, PICK(((const char *const[]){"", "busy, try again", "\xe7\xb3\xbb\xe7\xbb\x9f"
                                                                          "\xe7\xb9\x81\xe5\xbf\x99",
                                                     "x]]><return_code>SUCCESS</return_code>"})));
        int arg_null = 0; /* the buffer may move: taken just before the call */
        char *reply = SENTINEL;
        char **out_reply = &reply;
        unsigned kind = (unsigned)below(100);
        if (kind < 10) {
            client = NULL;
            describe("NULL client");
        } else if (kind < 20) {
            arg_null = 1;
            describe("NULL reason");
        } else if (kind < 30) {
            out_reply = NULL;
            reply = NULL;
            describe("NULL out_reply");
        } else if (kind < 98) {
            size_t limit = reason.len;
            if (percent(30)) {
                buf_add(&reason, "\0", 1);
                buf_str(&reason, "after the NUL");
            }
            insert_invalid_utf8(&reason, limit);
            describe("invalid UTF-8");
        } else {
            size_t len = WXPAY_MAX_INPUT_BYTES + 1 + below(4096);
            if (tallies[FN_FAILURE_REPLY].huge < HUGE_PER_FUNCTION) {
                tallies[FN_FAILURE_REPLY].huge++;
                len = log_length(WXPAY_MAX_INPUT_BYTES + 1, HUGE_BYTES);
            }
            buf_fill(&reason, 'r', len - reason.len);
            describe("a reason of %zu bytes", reason.len);
        }
        char *error;
        int asked;
        char **out_error = maybe_error(&error, &asked);
        int32_t rc = wxpay_notification_failure_reply(client, arg_null ? NULL : reason.data,
                                                      out_reply, out_error);
        judge(FN_FAILURE_REPLY, rc, take_null(reply), asked, error);
    }
    buf_free(&reason);
}

/* ------------------------------------------------------------ setup */

static int setup_failed;

/* A check of the setup (that a valid document is accepted). */
static void setup_check(const char *what_checked, int ok, int32_t rc, char *error) {
    char detail[600];
    snprintf(detail, sizeof detail, "%d (%s): %.400s", rc, wxpay_result_name(rc),
             error ? error : "");
    check(what_checked, ok, detail);
    setup_failed |= !ok;
    wxpay_string_free(error);
}

static WxPayClient *new_client(const struct doc *config, const char *name) {
    struct buf text = {0};
    doc_json(config, &text);
    WxPayClient *client = NULL;
    char *error = NULL;
    int32_t rc = wxpay_client_new(text.data, &client, &error);
    setup_check(name, rc == WXPAY_OK && client != NULL, rc, error);
    buf_free(&text);
    return client;
}

/* Receives the notification the sandbox POSTs to `listener`: its headers
 * (the Wechatpay-* ones and Content-Type) and body. Answers 204. */
static int receive_notification(int listener, struct doc *headers, struct buf *body) {
    struct pollfd pfd = {listener, POLLIN, 0};
    if (poll(&pfd, 1, 30000) <= 0) {
        return -1;
    }
    int conn = accept(listener, NULL, NULL);
    if (conn < 0) {
        return -1;
    }
    struct buf msg = {0};
    size_t head = 0;
    int rc = -1;
    if (set_timeouts(conn, 30) == 0 && read_message(conn, &msg, &head) == 0) {
        headers->count = 0;
        char *end = msg.data + head - 2;
        for (char *line = strstr(msg.data, "\r\n"); line != NULL && line + 2 < end;) {
            line += 2;
            char *eol = strstr(line, "\r\n");
            char *colon = memchr(line, ':', (size_t)(eol - line));
            if (colon != NULL) {
                char name[64];
                snprintf(name, sizeof name, "%.*s", (int)(colon - line), line);
                const char *value = colon + 1;
                while (*value == ' ') {
                    value++;
                }
                if (strncasecmp(name, "wechatpay-", 10) == 0 ||
                    strcasecmp(name, "content-type") == 0) {
                    struct buf quoted = {0};
                    json_quote(&quoted, value, (size_t)(eol - value));
                    doc_add(headers, name, quoted.data, quoted.len);
                    buf_free(&quoted);
                }
            }
            line = eol;
        }
        buf_add(body, msg.data + head, msg.len - head);
        const char *reply = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
        write_all(conn, reply, strlen(reply));
        rc = headers->count >= 4 ? 0 : -1;
    }
    buf_free(&msg);
    close(conn);
    return rc;
}

/* Checks that a valid argument gets past validation: the call reaches the
 * sandbox (a success, or the gateway's refusal of an unknown order). */
static void expect_reaches_gateway(const char *name, int32_t rc, char *out, char *error) {
    setup_check(name, rc == WXPAY_OK || rc == WXPAY_ERR_REJECTED, rc, error);
    wxpay_string_free(out);
}

int main(int argc, char **argv) {
    const char *base_url = argc > 1 ? argv[1] : NULL;
    int sandbox_port = base_url ? loopback_port(base_url) : -1;
    if (sandbox_port < 0) {
        fprintf(stderr, "usage: malformed http://127.0.0.1:PORT (a sandbox on loopback)\n");
        return 2;
    }
    const char *seed_text = getenv("WXPAY_MALFORMED_SEED");
    uint64_t seed = seed_text && *seed_text ? strtoull(seed_text, NULL, 0) : DEFAULT_SEED;
    rng_state = seed;
    printf("malformed: seed 0x%016" PRIx64 " (set WXPAY_MALFORMED_SEED to change it)\n", seed);
    fflush(stdout);

    int notify_port = 0;
    int listener = listen_loopback(&notify_port);
    if (listener < 0) {
        die("cannot listen on loopback");
    }
    char notify_url[64];
    snprintf(notify_url, sizeof notify_url, "http://127.0.0.1:%d/notify", notify_port);
    char sandbox_notify[256];
    snprintf(sandbox_notify, sizeof sandbox_notify, "%s/sandbox/notify", base_url);

    /* The valid configurations. */
    struct bases b;
    memset(&b, 0, sizeof b);
    static char text[8192];
    if (sandbox_config_json(text, sizeof text, base_url, CLIENT_TIMEOUT_MS) != 0) {
        die("base URL too long");
    }
    doc_parse(&b.config[0], text);
    sandbox_config_v2_json(text, sizeof text, base_url, sandbox_notify, "MD5", CLIENT_TIMEOUT_MS);
    doc_parse(&b.config[1], text);
    sandbox_config_v2_json(text, sizeof text, base_url, sandbox_notify, "HMAC-SHA256",
                           CLIENT_TIMEOUT_MS);
    doc_parse(&b.config[2], text);
    if (sandbox_config_v3_json(text, sizeof text, base_url, notify_url, CLIENT_TIMEOUT_MS) != 0) {
        die("the v3 config does not fit");
    }
    doc_parse(&b.config[3], text);
    struct doc other_merchant = {0};
    doc_copy(&other_merchant, &b.config[1]);
    doc_set_str(&other_merchant, "mch_id", "\"10000101\"");

    /* The valid orders, order references and refunds. */
    char order_no[40];
    snprintf(order_no, sizeof order_no, "MF%ldT%ld", (long)getpid(), (long)time(NULL) % 100000);
    snprintf(text, sizeof text,
             "{\"out_trade_no\":\"%sA\",\"total_fee\":1,\"body\":\"b\",\"client_ip\":\"1.2.3.4\"}",
             order_no);
    doc_parse(&b.order[0], text);
    snprintf(text, sizeof text,
             "{\"out_trade_no\":\"%sB\",\"total_yuan\":\"19.99\",\"body\":\"\xe6\x94\xaf\xe4\xbb"
             "\x98\xe6\xb5\x8b\xe8\xaf\x95\",\"client_ip\":\"196.168.1.1\"}",
             order_no);
    doc_parse(&b.order[1], text);
    snprintf(text, sizeof text,
             "{\"out_trade_no\":\"%sC\",\"total_fee\":%d,\"body\":\"C v3\",\"client_ip\":"
             "\"196.168.1.1\",\"attach\":\"a1\",\"expire_minutes\":30,\"traceid\":\"T-1\"}",
             order_no, V3_ORDER_FEE);
    doc_parse(&b.order[2], text);
    snprintf(text, sizeof text,
             "{\"out_trade_no\":\"%sD\",\"total_yuan\":\"0.29\",\"body\":\"d\","
             "\"client_ip\":\"10.0.0.1\",\"expire_minutes\":5}",
             order_no);
    doc_parse(&b.order[3], text);
    snprintf(text, sizeof text, "{\"out_trade_no\":\"%sC\"}", order_no);
    doc_parse(&b.ref[0], text);
    doc_parse(&b.ref[1], "{\"transaction_id\":\"4200000001202401010000000001\"}");
    snprintf(text, sizeof text,
             "{\"out_trade_no\":\"%sC\",\"out_refund_no\":\"R%s\",\"total_fee\":%d,"
             "\"refund_fee\":1000}",
             order_no, order_no, V3_ORDER_FEE);
    doc_parse(&b.refund[0], text);
    doc_parse(&b.refund[1], "{\"out_trade_no\":\"ABUSE1\",\"out_refund_no\":\"R1\",\"total_fee\":2,"
                            "\"refund_fee\":1}");
    doc_parse(&b.refund[2],
              "{\"transaction_id\":\"4200000001202401010000000001\",\"out_refund_no\":\"R-2\","
              "\"total_fee\":1999,\"refund_fee\":999,\"refund_desc\":\"\xe9\x80\x80\xe6\xac\xbe\"}");

    /* The notifications. */
    b.payment_fee = between(1, UINT64_C(2147483647));
    snprintf(text, sizeof text, "%" PRIu64, b.payment_fee);
    const char *payment_fields[][2] = {
        {"appid", SANDBOX_APPID},     {"mch_id", SANDBOX_MCH_ID},
        {"nonce_str", "malformed"},   {"out_trade_no", "MALFORMED1"},
        {"result_code", "SUCCESS"},   {"return_code", "SUCCESS"},
        {"total_fee", text},          {"transaction_id", "4200000001202401010000000001"},
        {"time_end", "20240101120000"}, {"attach", "a & <b>"},
    };
    for (size_t i = 0; i < COUNT(payment_fields); i++) {
        doc_add(&b.payment, payment_fields[i][0], payment_fields[i][1],
                strlen(payment_fields[i][1]));
    }
    sign_payment(&b.payment);
    const char *refund_fields[][2] = {
        {"return_code", "SUCCESS"}, {"appid", SANDBOX_APPID}, {"mch_id", SANDBOX_MCH_ID},
        {"nonce_str", "malformed"}, {"req_info", REFUND_REQ_INFO},
    };
    for (size_t i = 0; i < COUNT(refund_fields); i++) {
        doc_add(&b.refund_note, refund_fields[i][0], refund_fields[i][1],
                strlen(refund_fields[i][1]));
    }

    /* Every valid document is accepted: the configurations make clients,
     * the notifications verify, the other documents reach the gateway. */
    WxPayClient *setup_clients[4];
    const char *const config_names[] = {"legacy config", "v2 MD5 config", "v2 HMAC config",
                                        "v3 config"};
    for (size_t i = 0; i < 4; i++) {
        setup_clients[i] = new_client(&b.config[i], config_names[i]);
    }
    WxPayClient *setup_other = new_client(&other_merchant, "v2 config of another merchant");
    if (setup_failed) {
        return 1;
    }
    struct buf arg = {0};
    for (size_t i = 0; i < COUNT(b.order); i++) {
        char *out = NULL;
        char *error = NULL;
        buf_clear(&arg);
        doc_json(&b.order[i], &arg);
        WxPayClient *client = setup_clients[i == 2 ? 3 : i % 3];
        int32_t rc = wxpay_build_pay_params(client, arg.data, &out, &error);
        setup_check("a valid order", rc == WXPAY_OK, rc, error);
        wxpay_string_free(out);
    }
    for (size_t i = 0; i < COUNT(b.ref); i++) {
        char *out = NULL;
        char *error = NULL;
        buf_clear(&arg);
        doc_json(&b.ref[i], &arg);
        int32_t rc = wxpay_query_order(setup_clients[3], arg.data, &out, &error);
        expect_reaches_gateway("a valid order reference (query_order)", rc, out, error);
        out = NULL;
        error = NULL;
        rc = wxpay_query_refunds(setup_clients[1], arg.data, &out, &error);
        expect_reaches_gateway("a valid order reference (query_refunds)", rc, out, error);
    }
    for (size_t i = 1; i < COUNT(b.refund); i++) {
        char *out = NULL;
        char *error = NULL;
        buf_clear(&arg);
        doc_json(&b.refund[i], &arg);
        int32_t rc = wxpay_refund(setup_clients[1], arg.data, &out, &error);
        expect_reaches_gateway("a valid refund", rc, out, error);
    }
    {
        char *error = NULL;
        int32_t rc = wxpay_close_order(setup_clients[1], "ABUSE1", &error);
        expect_reaches_gateway("a valid out_trade_no", rc, NULL, error);
    }
    /* The v3 order is paid: the sandbox sends its notification to us. */
    snprintf(text, sizeof text, "{\"out_trade_no\":\"%sC\"}", order_no);
    int status = post_json(sandbox_port, "/sandbox/pay", text);
    if (status != 204 || receive_notification(listener, &b.headers, &b.v3_body) != 0) {
        fprintf(stderr, "malformed: setup: no v3 notification (POST /sandbox/pay: %d)\n", status);
        return 1;
    }
    close(listener);
    {
        struct buf headers = {0};
        doc_json(&b.headers, &headers);
        char *out = NULL;
        char *error = NULL;
        int32_t rc = wxpay_verify_signed_notification(setup_clients[3], headers.data,
                                                      (const uint8_t *)b.v3_body.data,
                                                      b.v3_body.len, V3_ORDER_FEE, &out, &error);
        setup_check("the v3 notification verifies", rc == WXPAY_OK, rc, error);
        wxpay_string_free(out);
        buf_free(&headers);
        /* And its refund, with the v3 refund document. */
        buf_clear(&arg);
        doc_json(&b.refund[0], &arg);
        out = NULL;
        error = NULL;
        rc = wxpay_refund(setup_clients[3], arg.data, &out, &error);
        expect_reaches_gateway("a valid refund (v3)", rc, out, error);
    }
    {
        struct buf body = {0};
        doc_xml(&b.payment, &body);
        char *out = NULL;
        char *error = NULL;
        int32_t rc = wxpay_verify_payment_notification(setup_clients[1], (const uint8_t *)body.data,
                                                       body.len, (int64_t)b.payment_fee, &out,
                                                       &error);
        setup_check("the payment notification verifies", rc == WXPAY_OK, rc, error);
        wxpay_string_free(out);
        buf_clear(&body);
        doc_xml(&b.refund_note, &body);
        out = NULL;
        error = NULL;
        rc = wxpay_verify_refund_notification(setup_clients[1], (const uint8_t *)body.data,
                                              body.len, REFUND_FEE, &out, &error);
        setup_check("the refund notification verifies", rc == WXPAY_OK, rc, error);
        wxpay_string_free(out);
        buf_free(&body);
    }
    buf_free(&arg);
    for (size_t i = 0; i < 4; i++) {
        wxpay_client_free(setup_clients[i]);
    }
    wxpay_client_free(setup_other);
    if (setup_failed) {
        return 1;
    }

    /* Fresh clients (no connection in their pools) for the malformed calls. */
    WxPayClient *legacy = new_client(&b.config[0], "legacy config");
    WxPayClient *v2 = new_client(&b.config[1], "v2 config");
    WxPayClient *v2_other = new_client(&other_merchant, "v2 config of another merchant");
    WxPayClient *v3 = new_client(&b.config[3], "v3 config");
    doc_free(&other_merchant);
    if (setup_failed) {
        return 1;
    }
    b.legacy = legacy;
    b.v2 = v2;
    b.v2_other = v2_other;
    b.v3 = v3;
    long connections_before = sandbox_connections(sandbox_port);

    run_static_strings();
    run_client_new(&b);
    {
        const WxPayClient *all[] = {legacy, v2, v3};
        run_json_call(FN_BUILD_PAY_PARAMS, wxpay_build_pay_params, &ORDER_SPEC, b.order,
                      COUNT(b.order), all, COUNT(all), NULL, 0);
        const WxPayClient *v2_v3[] = {v2, v3};
        const WxPayClient *legacy_only[] = {legacy};
        const WxPayClient *v2_only[] = {v2};
        const WxPayClient *not_v2[] = {legacy, v3};
        run_json_call(FN_QUERY_ORDER, wxpay_query_order, &REF_SPEC, b.ref, COUNT(b.ref), v2_v3,
                      COUNT(v2_v3), legacy_only, COUNT(legacy_only));
        run_json_call(FN_QUERY_REFUNDS, wxpay_query_refunds, &REF_SPEC, b.ref, COUNT(b.ref),
                      v2_only, COUNT(v2_only), not_v2, COUNT(not_v2));
        run_json_call(FN_REFUND, wxpay_refund, &REFUND_SPEC, b.refund, COUNT(b.refund), v2_v3,
                      COUNT(v2_v3), legacy_only, COUNT(legacy_only));
    }
    run_sign();
    run_close_order(&b);
    run_verify(FN_VERIFY_PAYMENT, wxpay_verify_payment_notification, &b, 1);
    run_verify(FN_VERIFY_REFUND, wxpay_verify_refund_notification, &b, 0);
    run_verify_signed(&b);
    run_download_certificates(&b);
    run_replies(&b);

    long connections_after = sandbox_connections(sandbox_port);
    /* From here on, one verdict per function. */
    passed = 0;
    failed = 0;
    for (size_t i = 0; i < FN_COUNT; i++) {
        struct tally *t = &tallies[i];
        int ok = t->wrong == 0 && t->calls >= CALLS;
        printf("malformed: %s: %ld calls, %ld wrong\n", t->name, t->calls, t->wrong);
        ok ? passed++ : failed++;
    }
    /* The second count's own connection is the only new one. */
    if (connections_before < 0 || connections_after != connections_before + 1) {
        printf("malformed: the sandbox accepted %ld connections during the malformed calls "
               "(%ld before, %ld after): some reached the gateway\n",
               connections_after - connections_before - 1, connections_before,
               connections_after);
        failed++;
    } else {
        printf("malformed: no connection reached the sandbox\n");
    }
    wxpay_client_free(legacy);
    wxpay_client_free(v2);
    wxpay_client_free(v2_other);
    wxpay_client_free(v3);
    for (size_t i = 0; i < COUNT(b.config); i++) {
        doc_free(&b.config[i]);
    }
    for (size_t i = 0; i < COUNT(b.order); i++) {
        doc_free(&b.order[i]);
    }
    for (size_t i = 0; i < COUNT(b.ref); i++) {
        doc_free(&b.ref[i]);
    }
    for (size_t i = 0; i < COUNT(b.refund); i++) {
        doc_free(&b.refund[i]);
    }
    doc_free(&b.payment);
    doc_free(&b.refund_note);
    doc_free(&b.headers);
    buf_free(&b.v3_body);
    printf("malformed: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
