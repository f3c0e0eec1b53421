/* The cost of calling libwxpay through its C ABI, from C: `wxpay_version()`
 * (a bare call into the shared library) and `wxpay_sign()` +
 * `wxpay_string_free()` on the app's final-sign parameters (the same JSON as
 * examples/sign_timing.rs and the ctypes loop of scripts/bench.sh).
 *
 *   cc -O2 -Iinclude benches/c/sign_loop.c -Ltarget/release -lwxpay \
 *      -Wl,-rpath,$PWD/target/release -o target/bench/sign_loop
 *   target/bench/sign_loop [ITERATIONS]
 *
 * Prints one JSON line per measurement (mean ns per call over ITERATIONS,
 * the median of 7 batches). Numbers, not assertions. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wxpay.h"

static const char *APP_KEY =
    "L8LrMqqeGRxST5reouB0K66CaYAWpqhAVsq7ggKkxHCOastWksvuX1uvmvQclxaHoYd3ElNBrNO2DHnnzgfVG9Qs473M3DTOZug5er46FhuGofumV8H2FVR9qkjSlC5K";
static const char *PARAMS =
    "{\"appid\":\"wxd930ea5d5a258f4f\",\"noncestr\":\"e7d161ac8d8a76529d39d9f5b4249ccb\","
    "\"package\":\"Sign=WXPay\",\"partnerid\":\"1900000109\","
    "\"prepayid\":\"1101000000140429eb40476f8896f4c9\",\"timestamp\":\"1399514976\"}";

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static volatile const char *sink;

static void bare_call(void) { sink = wxpay_version(); }

static void sign_call(void) {
    char *out = NULL;
    if (wxpay_sign("legacy-sha1", APP_KEY, PARAMS, &out, NULL) != WXPAY_OK) {
        fprintf(stderr, "wxpay_sign failed\n");
        exit(1);
    }
    sink = out;
    wxpay_string_free(out);
}

static double median_ns(void (*op)(void), long iterations) {
    double means[7];
    for (long i = 0; i < iterations / 10 + 1; i++) op(); /* warm-up */
    for (int b = 0; b < 7; b++) {
        double t = now_ns();
        for (long i = 0; i < iterations; i++) op();
        means[b] = (now_ns() - t) / (double)iterations;
    }
    qsort(means, 7, sizeof means[0], cmp);
    return means[3];
}

int main(int argc, char **argv) {
    long iterations = argc > 1 ? atol(argv[1]) : 20000;
    char *out = NULL;
    if (wxpay_sign("legacy-sha1", APP_KEY, PARAMS, &out, NULL) != WXPAY_OK) return 1;
    fprintf(stderr, "sign_loop: libwxpay %s, legacy-sha1 = %s\n", wxpay_version(), out);
    wxpay_string_free(out);
    printf("{\"impl\": \"C -> libwxpay.so: wxpay_version() (bare call)\", \"ns_per_op\": %.1f}\n",
           median_ns(bare_call, iterations * 50));
    printf("{\"impl\": \"C -> libwxpay.so: wxpay_sign + wxpay_string_free\", \"ns_per_op\": %.0f}\n",
           median_ns(sign_call, iterations));
    return 0;
}
