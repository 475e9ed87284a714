#!/usr/bin/env bash
# The project's test command (CI runs it through .ci/run): bash tests/run.sh
#
# Installs the external tools the interop tests use when they are missing (Debian, as root), then
# runs the format check, clippy and every test target. Any failure exits non-zero.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# command name -> Debian package
declare -A tools=([docker-registry]=docker-registry [skopeo]=skopeo [umoci]=umoci [openssl]=openssl [htpasswd]=apache2-utils)
missing=()
for cmd in "${!tools[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${tools[$cmd]}")
done
if ((${#missing[@]} > 0)); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        echo "installing ${missing[*]}" >&2
        # Try without refreshing first: the package lists are usually recent enough.
        if ! apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
            apt-get update -qq >/dev/null
            apt-get install -y -qq "${missing[@]}" >/dev/null
        fi
    else
        # Tests that need a tool skip it outside CI and fail in CI (tests/support/mod.rs).
        echo "note: ${missing[*]} missing and cannot install (not root or no apt-get)" >&2
    fi
fi

echo "== cargo fmt --check" >&2
cargo fmt --all --check
echo "== cargo clippy --all-targets -- -D warnings" >&2
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test --all-targets" >&2
cargo test --all-targets
echo "== cargo test --doc" >&2
cargo test --doc
echo "== cargo check --no-default-features (the library without regbot's Lua)" >&2
cargo check --no-default-features --lib --bins --quiet
