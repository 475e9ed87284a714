#!/usr/bin/env bash
# Read-only registry commands, regctl vs skopeo, interleaved, on a throw-away docker-registry
# (plain http on loopback, fresh storage, access log) holding the 3-platform 208 MiB image as
# img:v1 and a small single-manifest image tagged 500 times in repo "tags":
#   regctl manifest head   vs skopeo inspect --raw     (skopeo has no HEAD-only command)
#   regctl manifest get    vs skopeo inspect --raw
#   regctl image inspect   vs skopeo inspect --config  (both resolve the index to linux/amd64)
#   regctl tag ls (500)    vs skopeo list-tags
# Reports median wall time, peak RSS and requests per command from the access log.
#
# Usage: bash bench/registry-read.sh     (RUNS=7 TAGS=500 by default; REGCTL=path skips the build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/lib.sh

RUNS=${RUNS:-7}
TAGS=${TAGS:-500}
bench_setup
need_tool skopeo skopeo
make_layouts
src=$(realpath "$OUT/src")
if [[ ! -f $OUT/small/index.json ]]; then
    "$GEN" "$OUT/small" --platforms linux/amd64 --layers-per-platform 1 --layer-size 4K \
        --no-index --seed 7 --tag t0 >/dev/null
fi
small=$(realpath "$OUT/small")
start_registry R
R=$R_HOST
RG="$REGCTL --host reg=$R,tls=disabled"
SK="skopeo --override-os linux --override-arch amd64"
TLS="--tls-verify=false"

$RG image copy "ocidir://$src:v1" "$R/img:v1" >/dev/null
$RG image copy "ocidir://$small:t0" "$R/tags:t0" >/dev/null
for ((i = 1; i < TAGS; i++)); do
    $RG image copy "$R/tags:t0" "$R/tags:t$i" >/dev/null
done
n=$(curl -sf "http://$R/v2/tags/tags/list" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["tags"]))')
[[ $n == "$TAGS" ]] || { echo "error: $n tags in $R/tags, expected $TAGS" >&2; exit 1; }

# Outputs are checked once, untimed, so a command that prints nothing useful cannot win.
$RG manifest get "$R/img:v1" | grep -q 'application/vnd.oci.image.index.v1+json'
$RG image inspect "$R/img:v1" | grep -q '"architecture": *"amd64"'
[[ $($RG tag ls "$R/tags" | wc -l) == "$TAGS" ]]
$SK inspect --raw $TLS "docker://$R/img:v1" | grep -q 'application/vnd.oci.image.index.v1+json'
$SK inspect --config $TLS "docker://$R/img:v1" | grep -q '"architecture": *"amd64"'

bench() { # bench TITLE REGCTL_CMD SKOPEO_CMD
    "${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --baseline skopeo --log "R=$R_LOG" \
        --title "$1 ($RUNS rounds)" --show-requests regctl --show-requests skopeo \
        --name regctl --cmd "$2" --name skopeo --cmd "$3"
}
bench "manifest head (index) vs skopeo inspect --raw" \
    "$RG manifest head $R/img:v1" "$SK inspect --raw $TLS docker://$R/img:v1"
bench "manifest get (index) vs skopeo inspect --raw" \
    "$RG manifest get $R/img:v1" "$SK inspect --raw $TLS docker://$R/img:v1"
bench "image inspect (index → linux/amd64 config) vs skopeo inspect --config" \
    "$RG image inspect $R/img:v1" "$SK inspect --config $TLS docker://$R/img:v1"
bench "tag ls, $TAGS tags, vs skopeo list-tags" \
    "$RG tag ls $R/tags" "$SK list-tags $TLS docker://$R/tags"
