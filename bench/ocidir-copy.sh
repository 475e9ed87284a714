#!/usr/bin/env bash
# Benchmarks `regctl image copy` between OCI layouts: median wall time over RUNS copies of a
# 3-platform, 208 MiB layout (fresh target each time) and peak RSS, then one copy of a single
# 1 GiB layer for peak RSS (streaming must keep it far below the layer size).
#
# Usage: bash bench/ocidir-copy.sh        (RUNS=5 by default)
# Layouts are generated once into bench/out/ (gitignored) by examples/make-layout.rs. Page cache
# is left warm on purpose: this measures regctl, not the disk.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-5}
OUT=bench/out
TARGET=${CARGO_TARGET_DIR:-target}

if [[ ! -x /usr/bin/time ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq time >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null && apt-get install -y -qq time >/dev/null; }
    else
        echo "error: /usr/bin/time (Debian package 'time') is required" >&2
        exit 1
    fi
fi

cargo build --release --quiet --bin regctl --example make-layout
# REGCTL may name another binary to compare against (same command line).
REGCTL=${REGCTL:-$TARGET/release/regctl}
GEN=$TARGET/release/examples/make-layout

# index.json is written last, so its presence means a complete layout.
if [[ ! -f $OUT/src/index.json ]]; then
    "$GEN" "$OUT/src" --platforms linux/amd64,linux/arm64,linux/arm/v7 \
        --layers-per-platform 4 --layer-size 16M --shared-base-layers 1 --seed 42 --tag v1
fi
if [[ ! -f $OUT/big/index.json ]]; then
    "$GEN" "$OUT/big" --platforms linux/amd64 --layers-per-platform 1 --layer-size 1G \
        --no-index --seed 42 --tag v1
fi

# copy SRC DST: prints "<wall seconds> <max RSS KiB>" for one copy into a fresh DST.
copy() {
    local src=$1 dst=$2 times
    times=$(mktemp)
    rm -rf "$dst"
    /usr/bin/time -o "$times" -f '%e %M' \
        "$REGCTL" image copy "ocidir://$src:v1" "ocidir://$dst:v1" >/dev/null
    # Guard against a copy that "succeeds" without writing anything.
    if [[ ! -f $dst/index.json ]]; then
        echo "error: copy to $dst produced no index.json" >&2
        exit 1
    fi
    cat "$times"
    rm -f "$times"
    rm -rf "$dst"
}

walls=()
peak=0
for ((i = 1; i <= RUNS; i++)); do
    result=$(copy "$OUT/src" "$OUT/dst-$i")
    read -r wall rss <<<"$result"
    echo "run $i: ${wall}s ${rss} KiB" >&2
    walls+=("$wall")
    if ((rss > peak)); then peak=$rss; fi
done
median=$(printf '%s\n' "${walls[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p")
echo "ocidir copy 3 platforms 208 MiB: median ${median} s over ${RUNS} runs, peak RSS ${peak} KiB"

result=$(copy "$OUT/big" "$OUT/big-dst")
read -r wall rss <<<"$result"
echo "ocidir copy 1 GiB single layer: ${wall} s, peak RSS ${rss} KiB"
