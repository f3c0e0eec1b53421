/*
 * Checks the C header of the Swift binding (bindings/swift/wxpayFFI.h)
 * against the built library, since no Swift compiler runs on this project's
 * CI. scripts/check-uniffi.sh compiles it with clang -Werror and links it
 * against target/debug/libwxpay.so, passing what it parsed from
 * bindings/swift/WxPay.swift and the header:
 *
 *   -DEXPECTED_CONTRACT_VERSION=N   the `bindings_contract_version` Swift expects
 *   swift_checksums.inc             CHECKSUM(function, value) for each API
 *                                   checksum Swift verifies at load time
 *   header_symbols.inc              SYMBOL(function) for every function the
 *                                   header declares (linking proves each exists)
 *
 * A header that does not compile, a symbol the library lacks, or a contract
 * version or checksum Swift would reject at start-up fails the check.
 * Prints one line per check and "swift-header: N passed, M failed".
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "wxpayFFI.h"

#ifndef EXPECTED_CONTRACT_VERSION
#error "compile with -DEXPECTED_CONTRACT_VERSION=<bindings_contract_version of WxPay.swift>"
#endif

static int passed = 0;
static int failed = 0;

static void check(int ok, const char *what, long long got, long long want) {
    if (ok) {
        passed++;
        printf("ok   %s\n", what);
    } else {
        failed++;
        printf("FAIL %s: got %lld, want %lld\n", what, got, want);
    }
}

/* Every function the header declares, by address: an unresolved one fails the link. */
typedef void (*any_fn)(void);
#define SYMBOL(name) (any_fn) & name,
static const any_fn header_symbols[] = {
#include "header_symbols.inc"
};
#undef SYMBOL

int main(void) {
    uint32_t version = ffi_wxpay_uniffi_contract_version();
    check(version == EXPECTED_CONTRACT_VERSION, "contract version matches WxPay.swift", version,
          EXPECTED_CONTRACT_VERSION);

#define CHECKSUM(name, want)                                                                      \
    do {                                                                                          \
        uint16_t got = name();                                                                    \
        check(got == (want), "checksum " #name " matches WxPay.swift", got, (want));              \
    } while (0);
#include "swift_checksums.inc"
#undef CHECKSUM

    size_t symbols = sizeof header_symbols / sizeof header_symbols[0];
    size_t resolved = 0;
    for (size_t i = 0; i < symbols; i++) {
        resolved += header_symbols[i] != NULL;
    }
    check(symbols > 0 && resolved == symbols, "every function in wxpayFFI.h resolves in libwxpay",
          (long long)resolved, (long long)symbols);

    /* The header's RustBuffer, ForeignBytes and RustCallStatus layouts, through real calls. */
    static const uint8_t text[] = "wxpay";
    ForeignBytes bytes = {.len = 5, .data = text};
    RustCallStatus status = {0};
    RustBuffer copy = ffi_wxpay_rustbuffer_from_bytes(bytes, &status);
    check(status.code == 0 && copy.len == 5 && copy.capacity >= 5 && copy.data != NULL &&
              memcmp(copy.data, text, 5) == 0,
          "rustbuffer_from_bytes copies through the header's structs", (long long)copy.len, 5);
    ffi_wxpay_rustbuffer_free(copy, &status);
    check(status.code == 0, "rustbuffer_free returns a success status", status.code, 0);

    printf("swift-header: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
