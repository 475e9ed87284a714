#!/usr/bin/env bash
# OCI layout to OCI layout copies, regctl vs skopeo, interleaved:
#  1. the 3-platform 208 MiB layout (RUNS rounds, fresh target each run): wall time, peak RSS;
#  2. a single 1 GiB layer (BIG_RUNS rounds): peak RSS must stay small and flat in blob size.
#
# Usage: bash bench/ocidir-copy.sh     (RUNS=5 BIG_RUNS=3 by default; REGCTL=path skips the build)
# Layouts are generated once into bench/out/ (gitignored) by examples/make-layout.rs. Page cache
# is left warm on purpose: this measures the tools, not the disk. Prints markdown tables.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/lib.sh

RUNS=${RUNS:-5}
BIG_RUNS=${BIG_RUNS:-3}
bench_setup
need_tool skopeo skopeo
make_layouts big
src=$(realpath "$OUT/src")
big=$(realpath "$OUT/big")

# A copy that "succeeds" without writing the tag must not count.
check() { echo "grep -Eq 'image.ref.name\"[[:space:]]*:[[:space:]]*\"v1\"' $1/index.json && rm -rf $1"; }

"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --baseline skopeo \
    --title "ocidir → ocidir, 3 platforms, 13 layers, 208 MiB ($RUNS rounds)" \
    --name regctl --prepare "rm -rf $WORK/r" \
    --cmd "$REGCTL image copy ocidir://$src:v1 ocidir://$WORK/r:v1" --check "$(check "$WORK/r")" \
    --name skopeo --prepare "rm -rf $WORK/s" \
    --cmd "skopeo --insecure-policy copy -q --all oci:$src:v1 oci:$WORK/s:v1" --check "$(check "$WORK/s")"

"${PAIRED[@]}" --rounds "$BIG_RUNS" --baseline skopeo \
    --title "ocidir → ocidir, one 1 GiB layer ($BIG_RUNS rounds)" \
    --name regctl --prepare "rm -rf $WORK/r" \
    --cmd "$REGCTL image copy ocidir://$big:v1 ocidir://$WORK/r:v1" --check "$(check "$WORK/r")" \
    --name skopeo --prepare "rm -rf $WORK/s" \
    --cmd "skopeo --insecure-policy copy -q --all oci:$big:v1 oci:$WORK/s:v1" --check "$(check "$WORK/s")"
