#!/usr/bin/env bash
# Fails when the checked-in uniffi bindings (bindings/kotlin, bindings/swift,
# bindings/python) differ from what the current library generates: it
# regenerates them into a temporary directory and diffs. The same as
# `scripts/gen-bindings.sh --check`.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/gen-bindings.sh" --check
