#!/usr/bin/env python3
"""Fails when a test secret appears in captured output.

Usage: scripts/scan-secrets.py FILE...

Each FILE is output captured from a test run (logs at WXPAY_LOG=trace,
test programs' stdout and stderr). The script looks in every line for:

  - the sandbox account's app_secret, app_key, partner_key, API v2 key and
    API v3 key (src/sandbox/config.rs `defaults`, tests/c/sandbox_account.h),
    and the API v2 simulation sign key the sandbox derives from the API key
    (src/sandbox/v2.rs);
  - every 64-character base64 line of the test private keys
    (src/sandbox/keys/*.pem, tests/fixtures/*.pem; private keys only);
  - the wrong keys and secrets the tests use on purpose;
  - any access_token the sandbox issued (its fixed prefix, then hex digits).

The values are read from those source files when the script runs; a source
that no longer yields its value is an error (exit 2), so the scan never
silently looks for nothing. A finding prints the file, the line number and
which kind of secret it is, never the secret, and the exit status is 1.
Standard library only.
"""

import glob
import hashlib
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A token the sandbox issued: its prefix and at least this many of its hex digits.
TOKEN_MIN_DIGITS = 8


class SourceError(Exception):
    """A secret's source file no longer holds the value where it is expected."""


def read(relative):
    with open(os.path.join(ROOT, relative), encoding="utf-8") as f:
        return f.read()


def extract(relative, pattern, what):
    """The first group of `pattern` in the file, or SourceError."""
    match = re.search(pattern, read(relative), re.S)
    if not match or not match.group(1):
        raise SourceError("{}: no {} found (pattern {!r})".format(relative, what, pattern))
    return match.group(1)


def rust_const(relative, name):
    return extract(relative, r'pub const {}: &str = "([^"]*)";'.format(name), name)


def c_define(relative, name):
    """A #define of adjacent C string literals, continuation lines included."""
    body = extract(relative, r"#define {}\b((?:[^\n]*\\\n)*[^\n]*)".format(name), name)
    parts = re.findall(r'"([^"]*)"', body)
    if not parts:
        raise SourceError("{}: {} is not a string literal".format(relative, name))
    return "".join(parts)


def private_key_lines(pattern):
    """(kind, line) for each 64-character base64 line of a private key PEM."""
    found = []
    for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
        text = read(os.path.relpath(path, ROOT))
        blocks = re.findall(
            r"-----BEGIN ((?:RSA |EC )?PRIVATE KEY)-----\n(.*?)-----END \1-----", text, re.S
        )
        for _, body in blocks:
            for line in body.split():
                if len(line) == 64:
                    found.append(("private key {}".format(os.path.basename(path)), line))
    return found


def secrets():
    """Every (kind, value) to look for, and the sandbox's token prefix."""
    mod = "src/sandbox/config.rs"
    header = "tests/c/sandbox_account.h"
    listed = [
        ("app_secret", rust_const(mod, "APP_SECRET")),
        ("app_key", rust_const(mod, "APP_KEY")),
        ("partner_key", rust_const(mod, "PARTNER_KEY")),
        ("api_key (API v2)", rust_const(mod, "API_KEY")),
        ("API v3 key", rust_const(mod, "API_V3_KEY")),
        ("app_secret (C tests)", c_define(header, "SANDBOX_APP_SECRET")),
        ("app_key (C tests)", c_define(header, "SANDBOX_APP_KEY")),
        ("partner_key (C tests)", c_define(header, "SANDBOX_PARTNER_KEY")),
        ("api_key (C tests)", c_define(header, "SANDBOX_API_KEY")),
        ("API v3 key (C tests)", c_define(header, "SANDBOX_V3_API_V3_KEY")),
        (
            "wrong partner_key (tests/no_secrets.rs)",
            extract("tests/no_secrets.rs", r'bad\.partner_key = Some\("([^"]+)"', "partner_key"),
        ),
        (
            "wrong api_key (tests/no_secrets.rs)",
            extract("tests/no_secrets.rs", r'bad\.api_key = Some\("([^"]+)"', "api_key"),
        ),
        (
            "signing key (tests/cli.rs)",
            extract("tests/cli.rs", r'\.env\("WXPAY_TEST_KEY", "([^"]+)"\)', "WXPAY_TEST_KEY"),
        ),
        (
            "wrong app_secret (tests/bindings/test_wxpay.py)",
            extract("tests/bindings/test_wxpay.py", r'app_secret="([^"]+)"', "app_secret"),
        ),
        (
            "wrong app_secret (tests/bindings/TestWxPay.kt)",
            extract("tests/bindings/TestWxPay.kt", r'appSecret = "([^"]+)"', "appSecret"),
        ),
    ]
    # The key WeChat's simulation environment signs with, as the sandbox
    # derives it: MD5 of a fixed prefix and the API key.
    prefix = extract(
        "src/sandbox/v2.rs",
        r'format!\(\s*"([^"{]+)\{\}",\s*config\.api_key\.expose\(\)',
        "simulation key derivation",
    )
    api_key = rust_const(mod, "API_KEY")
    listed.append(
        (
            "API v2 simulation sign key",
            hashlib.md5((prefix + api_key).encode("utf-8")).hexdigest(),
        )
    )
    listed += private_key_lines("src/sandbox/keys/*.pem")
    listed += private_key_lines("tests/fixtures/*.pem")
    if not any(kind.startswith("private key") for kind, _ in listed):
        raise SourceError("no private key line found under src/sandbox/keys or tests/fixtures")
    for kind, value in listed:
        if len(value) < 8:
            raise SourceError("{} is too short to look for".format(kind))
    token_prefix = rust_const(mod, "ACCESS_TOKEN_PREFIX")
    return listed, token_prefix


def scan(paths, listed, token_prefix):
    """(path, line number, kind) for every finding."""
    # A value listed twice (the C tests' copy of the account) is named once.
    by_value = {}
    for kind, value in listed:
        by_value.setdefault(value, kind)
    # Longest first, so a secret that contains another is named as itself.
    values = sorted(by_value, key=len, reverse=True)
    any_secret = re.compile("|".join(re.escape(v) for v in values))
    token = re.compile(re.escape(token_prefix) + "[0-9a-fA-F]{%d,}" % TOKEN_MIN_DIGITS)
    findings = []
    for path in paths:
        # latin-1 reads any bytes; every secret is ASCII.
        with open(path, encoding="latin-1") as f:
            for number, line in enumerate(f, 1):
                if any_secret.search(line):
                    kinds = {by_value[v] for v in values if v in line}
                    for kind in sorted(kinds):
                        findings.append((path, number, kind))
                if token.search(line):
                    findings.append((path, number, "sandbox access_token"))
    return findings


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    paths = argv[1:]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        print("scan-secrets: not a file: {}".format(", ".join(missing)), file=sys.stderr)
        return 2
    try:
        listed, token_prefix = secrets()
    except (OSError, SourceError) as e:
        print("scan-secrets: cannot read the secrets: {}".format(e), file=sys.stderr)
        return 2
    findings = scan(paths, listed, token_prefix)
    for path, number, kind in findings:
        print("{}:{}: {}".format(path, number, kind))
    if findings:
        print(
            "scan-secrets: {} finding(s) in {} file(s)".format(
                len(findings), len({p for p, _, _ in findings})
            ),
            file=sys.stderr,
        )
        return 1
    print(
        "scan-secrets: {} file(s) clean: none of {} secret values, no sandbox access_token".format(
            len(paths), len(set(v for _, v in listed))
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
