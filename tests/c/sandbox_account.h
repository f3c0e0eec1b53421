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

/* Writes the client configuration JSON for the sandbox at `base_url` into
 * `buf`; returns 0 on success, -1 when it does not fit. */
static int sandbox_config_json(char *buf, size_t size, const char *base_url, int timeout_ms) {
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

#endif /* WXPAY_TEST_SANDBOX_ACCOUNT_H */
