#!/usr/bin/env bash
# Registry copies, regctl vs skopeo, interleaved, on two throw-away docker-registry instances
# (A and B, plain http on loopback, fresh storage, access logs). The 3-platform 208 MiB layout is
# pushed once to A/img:v1 with regctl, then for RUNS rounds (after one warm-up round):
#   (a) fresh copy   A/img:v1 -> B/<fresh repo per run>:v1
#   (b) no-op copy   A/img:v1 -> B/noop:v1 (already there, pushed before the first round)
#   (c) same registry A/img:v1 -> A/<fresh repo per run>:v1 (blobs can be mounted)
#   (d) to a layout  A/img:v1 -> OCI layout (fresh directory per run)
# Reports median wall time, peak RSS and requests per run from both access logs, by method, and
# the request sequences of regctl and skopeo (first timed run). skopeo runs with an empty
# blob-info cache every time (see SK below).
#
# Usage: bash bench/registry-copy.sh     (RUNS=7 by default; REGCTL=path skips the build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/lib.sh

RUNS=${RUNS:-7}
bench_setup
need_tool skopeo skopeo
make_layouts
src=$(realpath "$OUT/src")
start_registry A
start_registry B
A=$A_HOST
B=$B_HOST
RG="$REGCTL --host reg=$A,tls=disabled --host reg=$B,tls=disabled"
# skopeo keeps a blob-info cache (/var/lib/containers/cache for root) remembering where it saw
# each blob, and then mounts blobs from the repository a previous run pushed: a "fresh" copy
# to a new repo in B would mount everything from the previous round's repo. Each skopeo run gets
# an empty private cache instead (in rootless mode it lives under $XDG_DATA_HOME).
SKC=$WORK/skopeo-cache
SK="env _CONTAINERS_ROOTLESS_UID=1000 XDG_DATA_HOME=$SKC skopeo --insecure-policy copy -q --all"
SK+=" --src-tls-verify=false --dest-tls-verify=false"
LOGS=(--log "A=$A_LOG" --log "B=$B_LOG")

$RG image copy "ocidir://$src:v1" "$A/img:v1" >/dev/null
ACCEPT='application/vnd.oci.image.index.v1+json'
digest() { # digest HOST REPO TAG -> the manifest digest the registry serves
    curl -sfI -H "Accept: $ACCEPT" "http://$1/v2/$2/manifests/$3" |
        tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }'
}
SRC_DIGEST=$(digest "$A" img v1)
[[ $SRC_DIGEST == sha256:* ]] || { echo "error: push to A failed" >&2; exit 1; }
# same_digest HOST REPO: the copy's tag must serve the source index, byte for byte.
same_digest() { [[ $(digest "$1" "$2" v1) == "$SRC_DIGEST" ]]; }
export -f digest same_digest
export ACCEPT SRC_DIGEST
echo "source: $A/img:v1 $SRC_DIGEST" >&2

"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --baseline skopeo "${LOGS[@]}" \
    --title "(a) fresh copy A → B, 208 MiB, 3 platforms ($RUNS rounds)" \
    --show-requests regctl \
    --name regctl --cmd "$RG image copy $A/img:v1 $B/fresh-regctl{round}:v1" \
    --check "same_digest $B fresh-regctl{round}" \
    --name skopeo --prepare "rm -rf $SKC" --cmd "$SK docker://$A/img:v1 docker://$B/fresh-skopeo{round}:v1" \
    --check "same_digest $B fresh-skopeo{round}"

$RG image copy "$A/img:v1" "$B/noop:v1" >/dev/null
"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --baseline skopeo "${LOGS[@]}" \
    --title "(b) no-op copy A → B, target already up to date ($RUNS rounds)" \
    --show-requests regctl --show-requests skopeo \
    --name regctl --cmd "$RG image copy $A/img:v1 $B/noop:v1" --check "same_digest $B noop" \
    --name skopeo --prepare "rm -rf $SKC" --cmd "$SK docker://$A/img:v1 docker://$B/noop:v1" --check "same_digest $B noop"

"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --baseline skopeo "${LOGS[@]}" \
    --title "(c) copy to a new repository in the same registry A ($RUNS rounds)" \
    --show-requests regctl --show-requests skopeo \
    --name regctl --cmd "$RG image copy $A/img:v1 $A/same-regctl{round}:v1" \
    --check "same_digest $A same-regctl{round}" \
    --name skopeo --prepare "rm -rf $SKC" --cmd "$SK docker://$A/img:v1 docker://$A/same-skopeo{round}:v1" \
    --check "same_digest $A same-skopeo{round}"

layout_ok() { echo "grep -Eq 'image.ref.name\"[[:space:]]*:[[:space:]]*\"v1\"' $1/index.json && rm -rf $1"; }
"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --baseline skopeo "${LOGS[@]}" \
    --title "(d) copy A → OCI layout ($RUNS rounds)" \
    --name regctl --prepare "rm -rf $WORK/lay-r" \
    --cmd "$RG image copy $A/img:v1 ocidir://$WORK/lay-r:v1" --check "$(layout_ok "$WORK/lay-r")" \
    --name skopeo --prepare "rm -rf $WORK/lay-s $SKC" \
    --cmd "$SK docker://$A/img:v1 oci:$WORK/lay-s:v1" --check "$(layout_ok "$WORK/lay-s")"
