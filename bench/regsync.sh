#!/usr/bin/env bash
# regsync on two throw-away docker-registry instances (plain http on loopback, access logs):
# registry A holds one repository with 50 tags of one small multi-platform image
# (testdata/testrepo:v1, so every tag shares all manifests and layers), registry B starts
# empty. One `type: repository` entry A/bench → B/<repo>:
#   (a) first run   `regsync once` into a fresh repository of B every round
#   (b) no-op re-run `regsync once` into B/noop, already up to date (synced before round 1)
# Reports median wall time and requests per run from both access logs, by method (the target of
# the issue: a re-run costs one tag list plus two manifest HEADs per tag, well under a second).
#
# Usage: bash bench/regsync.sh     (RUNS=7 by default, TAGS=50; REGCTL/REGSYNC=path skip builds)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/lib.sh

RUNS=${RUNS:-7}
TAGS=${TAGS:-50}
bench_setup
REGSYNC=$(release_bin regsync "${REGSYNC:-}")
start_registry A
start_registry B
A=$A_HOST
B=$B_HOST
LOGS=(--log "A=$A_LOG" --log "B=$B_LOG")

seed_bench_repo "$A" "$TAGS"

# cfg REPO -> a config syncing A/bench to B/REPO
cfg() {
    config_head "$A" "$B"
    cat <<EOF
sync:
  - source: $A/bench
    target: $B/$1
    type: repository
EOF
}
export -f cfg config_head
export A B
ntags() { # ntags REPO: tags in B/REPO (no referrer fallback tags)
    local got
    got=$(curl -sf "http://$B/v2/$1/tags/list" | python3 -c 'import json,sys; print(len([t for t in json.load(sys.stdin)["tags"] if not t.startswith("sha256-")]))')
    [[ $got -eq $TAGS ]]
}
export -f ntags
export TAGS
echo "source: $A/bench ($TAGS tags), target registry $B" >&2

RS="$REGSYNC -v warn once -c"
"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 "${LOGS[@]}" \
    --title "(a) regsync once, $TAGS tags A → empty repository in B ($RUNS rounds)" \
    --name regsync --prepare "cfg fresh{round} >$WORK/fresh{round}.yaml" \
    --cmd "$RS $WORK/fresh{round}.yaml" --check "ntags fresh{round}"

cfg noop >"$WORK/noop.yaml"
$RS "$WORK/noop.yaml"
"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 "${LOGS[@]}" \
    --title "(b) regsync once re-run, $TAGS tags, nothing to do ($RUNS rounds)" \
    --show-requests regsync \
    --name regsync --cmd "$RS $WORK/noop.yaml" --check "ntags noop"
