/*
 * The merchant account of the libwxpay sandbox (`wxpay sandbox`, or
 * wxpay::sandbox::SandboxConfig::default()): the public example merchant of
 * the 2014 documentation plus a sandbox-only app secret. These values are
 * published test data, not secrets; a real server reads its configuration
 * from a protected file instead.
 */
#ifndef WXPAY_TEST_SANDBOX_ACCOUNT_H
#define WXPAY_TEST_SANDBOX_ACCOUNT_H

#include <stdio.h>

#define SANDBOX_APPID "wxd930ea5d5a258f4f"
#define SANDBOX_APP_SECRET "db426a9829e4b49a0dcac7b4162da6b6"
#define SANDBOX_APP_KEY                                                                            \
    "L8LrMqqeGRxST5reouB0K66CaYAWpqhAVsq7ggKkxHCOastWksvuX1uvmvQclxaHoYd3ElNBrNO2DHnnzgfVG9Qs473M" \
    "3DTOZug5er46FhuGofumV8H2FVR9qkjSlC5K"
#define SANDBOX_PARTNER_ID "1900000109"
#define SANDBOX_PARTNER_KEY "8934e7d15453e97507ef794cf7b0519d"
/* API v2: the example merchant id and API key (wxpay::sandbox::defaults). */
#define SANDBOX_MCH_ID "10000100"
#define SANDBOX_API_KEY "192006250b4c09247ec02edce69f6a2d"

/* Writes the client configuration JSON for the sandbox at `base_url` into
 * `buf`; returns 0 on success, -1 when it does not fit. */
static inline int sandbox_config_json(char *buf, size_t size, const char *base_url,
                                      int timeout_ms) {
    int n = snprintf(buf, size,
                     "{\"appid\":\"" SANDBOX_APPID "\","
                     "\"app_secret\":\"" SANDBOX_APP_SECRET "\","
                     "\"app_key\":\"" SANDBOX_APP_KEY "\","
                     "\"partner_id\":\"" SANDBOX_PARTNER_ID "\","
                     "\"partner_key\":\"" SANDBOX_PARTNER_KEY "\","
                     "\"notify_url\":\"%s/sandbox/notify\","
                     "\"api_base\":\"%s\","
                     "\"timeout_ms\":%d}",
                     base_url, base_url, timeout_ms);
    return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

/* Writes the API v2 client configuration JSON for the sandbox at `base_url`
 * into `buf`, with notifications going to `notify_url` and requests signed
 * with `sign_type` ("MD5" or "HMAC-SHA256": the sandbox's own setting);
 * returns 0 on success, -1 when it does not fit. */
static inline int sandbox_config_v2_json(char *buf, size_t size, const char *base_url,
                                         const char *notify_url, const char *sign_type,
                                         int timeout_ms) {
    int n = snprintf(buf, size,
                     "{\"api\":\"v2\","
                     "\"appid\":\"" SANDBOX_APPID "\","
                     "\"mch_id\":\"" SANDBOX_MCH_ID "\","
                     "\"api_key\":\"" SANDBOX_API_KEY "\","
                     "\"sign_type\":\"%s\","
                     "\"notify_url\":\"%s\","
                     "\"api_base\":\"%s\","
                     "\"timeout_ms\":%d}",
                     sign_type, notify_url, base_url, timeout_ms);
    return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

#endif /* WXPAY_TEST_SANDBOX_ACCOUNT_H */
