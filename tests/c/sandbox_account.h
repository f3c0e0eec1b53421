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

/* API v3 (wxpay::sandbox::defaults): the merchant id, certificate serial,
 * API v3 key, WeChat Pay public key id, and the public test keys of
 * src/sandbox/keys (merchant_key.pem, platform_public_key.pem) as the insides
 * of JSON strings. */
#define SANDBOX_V3_MCHID "1900000109"
#define SANDBOX_V3_SERIAL_NO "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"
#define SANDBOX_V3_API_V3_KEY "sandboxAPIv3Key00000000000000000"
#define SANDBOX_V3_PUBLIC_KEY_ID "PUB_KEY_ID_0119000001092024010100000000000001"
#define SANDBOX_V3_MERCHANT_KEY_JSON \
    "-----BEGIN PRIVATE KEY-----\\n" \
    "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC3sN6QUkCYvw5P\\n" \
    "LxBTJmCm6FnIgOvdxWr/ZyFonAV9vly0leC0DWZX9caFerlu9arM+eedzIctNZwf\\n" \
    "kwOpMm553fWjImnfNXHDt40uGUIYQkWQfMD5KK16kBkQDttw0RZ0SfVzhQJOUaQk\\n" \
    "RY/AMn0uoI5fvYJy7QIqr3bfWY3BrnLRz7XTzBf+E/CKRZUfuCjibivLBz2ZPtxD\\n" \
    "WaevOH6FC7ZLupKrUk8RATLkJ66UYtToihlW7qGsycWmXDvEAddHthINLkoH1/mz\\n" \
    "KfhUrlxLp+4eeoplWP4Q8UROrSMf+04iYCGkBxjIps7j8OSkorhaNQa5DWxbl4ad\\n" \
    "yuoUrBRBAgMBAAECggEAAJoUJdvw4nY9bAdHdu4INvJJ22Wvnij7u3BYVVGl7YU3\\n" \
    "9BMV1NGym7IUWl0EQB6uuoIM7RcTxB9L5JUnf96gisJ2R+B6sUulTLPadvXAAgzP\\n" \
    "KgK0YjmcwUcZL6ykibTr7WXF07j+TJzdJk22e4m/z/kYe9Qa5hz4aOTdIVzfhWR7\\n" \
    "O1pB+PrsSQVTNLfb6HIkrOsYN/k8gFhDrbErSxn00jZOjx5wPK7OZwiKTTnvbD+Q\\n" \
    "ELwiiL6Kbv1Jp/lFXB8xMvDClZRHFhV/YfEKKmkZJNRA1XIn7FdOogg7bw/vW4Zz\\n" \
    "zQdDi31Cmvo5WU3p+2E4Oc1V7bY0Q/Y2kIelRfX1AQKBgQD9l4376y9z/vbkpap4\\n" \
    "Nt/hvwLStnYHFUhUA1USs9HDWbC3ir79ZptONH7bLoQsVjO3JznhdM8+JD3g4oiM\\n" \
    "t2MgXf7noEyuHKDeDJNglR2Sd21Zxihoapjs1V5O6tl8/MLnD1gv7/begiJIWllO\\n" \
    "w+/saNlNwbrHjGte9oBh98/lQQKBgQC5b2UyY2GERCC+bMVu/ftlOR2B3j8rWpwH\\n" \
    "qMs+p9aD1KPcI5T8agyIdQHz2HNm5vfFpTUl8Jmikhl1PwFjvC34TjkoRRIkSgq4\\n" \
    "jLH/IqEr+L/7nxl+NWne8XwpXTPhyybgXQk8OpnsF16aEAzI4k1fomDUuIBKRGv/\\n" \
    "bRJAAjVvAQKBgQC+C0fylQwY5+hq7eRU9vrNGPKqqubE5CQyIdUtkOkQdzTCOA5t\\n" \
    "pOmasCipZbDT8T4Mci8kUP/G2C4vTFV87yowZYDUYQNWMEo2XkJMTTO+QhYHA0Ph\\n" \
    "DJHSWwy0I7gdvObrdkpmknT1x5ydkGgBaUFycBj59sddKFSG9EC+KpL4gQKBgH21\\n" \
    "MpkyHg2YUcpF2qIfs6kvSv2bOJ+fUV8v4nibNyUvpdW6mWl0SwLGr4grGDCOKzHl\\n" \
    "iV4q+TvoZzHAgKSoEVHfVYgjKuVG/HWXi6M2SqSQgTWG6bVRaHAmrNEtydor6jL3\\n" \
    "XydhYq9WOF+gucoFAAbxAUuzt+Sg9cW2n0SdOrQBAoGBAJXBFqkAomyrxEdmh9HT\\n" \
    "dQnbVxDtaU31YCtcafnL67eFajl8g1DyY7707cmEQ+M7GqgKYKinWMTxUfrXZi0B\\n" \
    "4riPNmDASp+P8H/KWCVm2R10XMVkEPCKZiTgONXQOQTdjCBYGKTGa6784GycNjmT\\n" \
    "gNWz3AGK48cOq0R/UBQKceR8\\n" \
    "-----END PRIVATE KEY-----\\n"
#define SANDBOX_V3_PUBLIC_KEY_JSON \
    "-----BEGIN PUBLIC KEY-----\\n" \
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1rAIj1MxUFlhy3ylc8Kc\\n" \
    "kpaE5BUNcwwibTXbd3/U74CX833xOUOAMk5EB8ttOOW3cpjkT7l3OrUgvgdfEvgS\\n" \
    "BF5okEl5EE8s0KRRm0gr4eD5u+q8F8dom0J4dC0/J0uwkXuumVLHTU/DVwBjlPHN\\n" \
    "4rw+mygXhT55ZE9AxqfCtz3JqNpo2Hapl6pYyyw2Dk04RNagh8aorgO5LVj8Cxds\\n" \
    "U2ICWYf1HK6Jy3UZ6nUcZLFrEG+Aq9IZ/LevRMskgV0/QCZsFaNtdvfXbiYCiH63\\n" \
    "ZN4Zl2LW15StuOFBGsvpbU414IjetBbIE1/yFCGIV32l5VaWiZkD4ds/aYcyEOxG\\n" \
    "SQIDAQAB\\n" \
    "-----END PUBLIC KEY-----\\n"

/* Writes the API v3 client configuration JSON (public-key mode) for the
 * sandbox at `base_url` into `buf`, with notifications going to
 * `notify_url`; returns 0 on success, -1 when it does not fit (4096 bytes
 * are enough for a short URL). */
static inline int sandbox_config_v3_json(char *buf, size_t size, const char *base_url,
                                         const char *notify_url, int timeout_ms) {
    int n = snprintf(buf, size,
                     "{\"api\":\"v3\","
                     "\"appid\":\"" SANDBOX_APPID "\","
                     "\"mchid\":\"" SANDBOX_V3_MCHID "\","
                     "\"merchant_private_key\":\"" SANDBOX_V3_MERCHANT_KEY_JSON "\","
                     "\"merchant_serial_no\":\"" SANDBOX_V3_SERIAL_NO "\","
                     "\"api_v3_key\":\"" SANDBOX_V3_API_V3_KEY "\","
                     "\"wechatpay_public_key\":\"" SANDBOX_V3_PUBLIC_KEY_JSON "\","
                     "\"wechatpay_public_key_id\":\"" SANDBOX_V3_PUBLIC_KEY_ID "\","
                     "\"notify_url\":\"%s\","
                     "\"api_base\":\"%s\","
                     "\"timeout_ms\":%d}",
                     notify_url, base_url, timeout_ms);
    return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

#endif /* WXPAY_TEST_SANDBOX_ACCOUNT_H */
