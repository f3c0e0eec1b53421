/*
 * memory.c: a million calls through the C ABI must not grow the process.
 *
 *     memory [ROUNDS]
 *
 * Warms up, reads the resident set size from /proc/self/statm, then makes
 * ROUNDS (default 250000) rounds of at least four calls each (so a million
 * calls) that allocate and free on both sides of the boundary: signatures
 * that succeed, calls that fail with an error document, a client created
 * and freed every hundred rounds, the static strings. Prints the growth and
 * exits 1 when it reaches 1 MiB.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "wxpay.h"

static long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f == NULL) {
        return -1;
    }
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) {
        resident = -1;
    }
    fclose(f);
    return resident * 4096;
}

static const char *CONFIG =
    "{\"appid\":\"wxd930ea5d5a258f4f\",\"app_secret\":\"s\",\"app_key\":\"k\","
    "\"partner_id\":\"1900000109\",\"partner_key\":\"p\",\"notify_url\":\"https://example.com/n\","
    "\"api_base\":\"http://127.0.0.1:9\"}";

static long calls_made = 0;

/* One round: four calls (six every hundredth) across the boundary. */
static int round_trip(long i) {
    calls_made += i % 100 == 0 ? 6 : 4;
    char *out = NULL;
    char *error = NULL;
    int failures = 0;
    if (wxpay_sign("legacy-sha1", "appkey",
                   "{\"appid\":\"wxd930ea5d5a258f4f\",\"noncestr\":\"n\",\"timestamp\":1399514976}",
                   &out, &error) != WXPAY_OK) {
        failures++;
    }
    wxpay_string_free(out);
    wxpay_string_free(error);
    out = NULL;
    error = NULL;
    if (wxpay_sign("v2-md5", "key", "{\"broken\":", &out, &error) == WXPAY_OK || error == NULL) {
        failures++;
    }
    wxpay_string_free(out);
    wxpay_string_free(error);
    if (i % 100 == 0) {
        /* A client is heavier (an HTTP runtime); create and free one now and then. */
        WxPayClient *client = NULL;
        error = NULL;
        if (wxpay_client_new(CONFIG, &client, &error) != WXPAY_OK) {
            failures++;
        }
        wxpay_client_free(client);
        wxpay_string_free(error);
    }
    if (wxpay_version() == NULL || wxpay_result_name(WXPAY_ERR_INVALID_JSON) == NULL) {
        failures++;
    }
    return failures;
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 250000;
    int failures = 0;
    for (long i = 0; i < 20000; i++) {
        failures += round_trip(i);
    }
    long before = rss_bytes();
    calls_made = 0;
    for (long i = 0; i < rounds; i++) {
        failures += round_trip(i);
    }
    long after = rss_bytes();
    long growth = after - before;
    printf("memory: %ld calls, rss %ld -> %ld bytes, growth %ld bytes, %d failures\n", calls_made,
           before, after, growth, failures);
    if (before < 0 || after < 0 || failures != 0) {
        return 1;
    }
    return growth < 1024 * 1024 ? 0 : 1;
}
