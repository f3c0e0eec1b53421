/*
 * pay.c: libwxpay used the way a C server uses it.
 *
 *     pay [BASE_URL [THREADS [ORDERS_PER_THREAD]]]
 *
 * BASE_URL is the gateway (a sandbox: `wxpay sandbox --port 0` prints it);
 * without it, the environment variable WXPAY_SANDBOX_URL. One client is
 * created and shared by THREADS threads (default 4), each building
 * ORDERS_PER_THREAD orders (default 2); every result is printed as
 *
 *     params {"appid":...,"prepayid":...,...}
 *
 * and everything is freed. Exit status 0 when every order got its pay
 * parameters.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox_account.h"
#include "wxpay.h"

#define MAX_THREADS 64

struct worker {
    const WxPayClient *client; /* shared by every worker: the client is thread-safe */
    int index;
    int orders;
    int failed;
    pthread_mutex_t *print_lock;
};

static void *work(void *arg) {
    struct worker *w = arg;
    for (int i = 0; i < w->orders; i++) {
        char order[256];
        /* out_trade_no is unique per merchant: pid, thread and sequence. */
        snprintf(order, sizeof order,
                 "{\"out_trade_no\":\"C%ldT%dN%d\",\"total_yuan\":\"%d.%02d\","
                 "\"body\":\"C \xe6\x94\xaf\xe4\xbb\x98\xe6\xb5\x8b\xe8\xaf\x95\","
                 "\"client_ip\":\"196.168.1.1\"}",
                 (long)getpid(), w->index, i, w->index + 1, i % 100);
        char *params = NULL;
        char *error = NULL;
        int32_t rc = wxpay_build_pay_params(w->client, order, &params, &error);
        pthread_mutex_lock(w->print_lock);
        if (rc == WXPAY_OK) {
            printf("params %s\n", params);
        } else {
            fprintf(stderr, "pay: wxpay_build_pay_params failed: %d (%s): %s\n", rc,
                    wxpay_result_name(rc), error ? error : "(no error document)");
            w->failed++;
        }
        pthread_mutex_unlock(w->print_lock);
        wxpay_string_free(params); /* NULL on failure: a no-op */
        wxpay_string_free(error);  /* NULL on success: a no-op */
    }
    return NULL;
}

/* The public package example of the 2014 documentation (PROTOCOL.md 1.2). */
static int sign_public_vector(void) {
    const char *params =
        "{\"bank_type\":\"WX\",\"body\":\"\xe6\x94\xaf\xe4\xbb\x98\xe6\xb5\x8b\xe8\xaf\x95\","
        "\"fee_type\":\"1\",\"input_charset\":\"UTF-8\",\"notify_url\":\"http://weixin.qq.com\","
        "\"out_trade_no\":\"7240b65810859cbf2a8d9f76a638c0a3\",\"partner\":\"1900000109\","
        "\"spbill_create_ip\":\"196.168.1.1\",\"total_fee\":\"1\"}";
    char *sign = NULL;
    char *error = NULL;
    int32_t rc = wxpay_sign("legacy-package", SANDBOX_PARTNER_KEY, params, &sign, &error);
    if (rc != WXPAY_OK) {
        fprintf(stderr, "pay: wxpay_sign failed: %d: %s\n", rc, error ? error : "");
        wxpay_string_free(error);
        return -1;
    }
    printf("sign %s\n", sign);
    wxpay_string_free(sign);
    return 0;
}

int main(int argc, char **argv) {
    const char *base = argc > 1 ? argv[1] : getenv("WXPAY_SANDBOX_URL");
    int threads = argc > 2 ? atoi(argv[2]) : 4;
    int per_thread = argc > 3 ? atoi(argv[3]) : 2;
    if (base == NULL || *base == '\0' || threads < 1 || threads > MAX_THREADS || per_thread < 1) {
        fprintf(stderr, "usage: pay BASE_URL [THREADS(1-%d) [ORDERS_PER_THREAD]]\n"
                        "       (or set WXPAY_SANDBOX_URL)\n", MAX_THREADS);
        return 2;
    }
    printf("version %s\n", wxpay_version());

    char config[1024];
    if (sandbox_config_json(config, sizeof config, base, 10000) != 0) {
        fprintf(stderr, "pay: base URL too long\n");
        return 2;
    }
    WxPayClient *client = NULL;
    char *error = NULL;
    int32_t rc = wxpay_client_new(config, &client, &error);
    if (rc != WXPAY_OK) {
        fprintf(stderr, "pay: wxpay_client_new failed: %d (%s): %s\n", rc, wxpay_result_name(rc),
                error ? error : "");
        wxpay_string_free(error);
        return 1;
    }

    pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_t ids[MAX_THREADS];
    struct worker workers[MAX_THREADS];
    int failed = 0;
    int started = 0;
    for (int t = 0; t < threads; t++) {
        workers[t] = (struct worker){client, t, per_thread, 0, &print_lock};
        if (pthread_create(&ids[t], NULL, work, &workers[t]) != 0) {
            fprintf(stderr, "pay: pthread_create failed\n");
            failed++;
            break;
        }
        started++;
    }
    for (int t = 0; t < started; t++) {
        pthread_join(ids[t], NULL);
        failed += workers[t].failed;
    }
    /* Every thread is done with the client: now it may be freed. */
    wxpay_client_free(client);

    if (sign_public_vector() != 0) {
        failed++;
    }
    printf("pay: %d orders, %d failed\n", started * per_thread, failed);
    return failed == 0 ? 0 : 1;
}
