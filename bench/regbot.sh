#!/usr/bin/env bash
# regbot against a throw-away docker-registry (plain http on loopback, access log): repository
# A/bench with 50 tags of testdata/testrepo:v1.
#   (a) an empty script: the fixed cost of `regbot once` (config, client, a sandboxed Lua state)
#   (b) an inventory script: tag.ls, then manifest.head of every tag (the read pattern of
#       housekeeping scripts): wall time and requests
#   (c) a CPU-bound script (5M loop iterations) with and without a `timeout`: the cost of the
#       instruction-count hook that enforces the deadline inside Lua
# No upstream regbot binary is available here, so there is no paired peer; figures stand alone.
#
# Usage: bash bench/regbot.sh     (RUNS=7 by default, TAGS=50; REGCTL/REGBOT=path skip builds)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/lib.sh

RUNS=${RUNS:-7}
TAGS=${TAGS:-50}
bench_setup
REGBOT=$(release_bin regbot "${REGBOT:-}")
start_registry A
A=$A_HOST
seed_bench_repo "$A" "$TAGS"

# cfg NAME TIMEOUT LUA -> a config with one script
cfg() {
    config_head "$A"
    cat <<EOF
scripts:
  - name: $1
    timeout: $2
    script: |
$(sed 's/^/      /' <<<"$3")
EOF
}
cfg empty 0s '-- nothing' >"$WORK/empty.yaml"
cfg inventory 0s "local n = 0
for _, t in ipairs(tag.ls(\"$A/bench\")) do
  local m = manifest.head(\"$A/bench:\" .. t)
  if m:descriptor().digest then n = n + 1 end
end
log(\"heads \" .. n)" >"$WORK/inventory.yaml"
LOOP='local s = 0
for i = 1, 5000000 do s = s + i % 7 end
log("sum " .. s)'
cfg loop 0s "$LOOP" >"$WORK/loop-nolimit.yaml"
cfg loop 10m "$LOOP" >"$WORK/loop-timeout.yaml"

RB="$REGBOT -v warn once -c"
"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --log "A=$A_LOG" \
    --title "(a) regbot once, empty script; (b) inventory: tag.ls + $TAGS manifest.head ($RUNS rounds)" \
    --show-requests inventory \
    --name empty --cmd "$RB $WORK/empty.yaml" \
    --name inventory --cmd "$RB $WORK/inventory.yaml"

"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --baseline no-timeout \
    --title "(c) 5M-iteration Lua loop, without and with a timeout (instruction hook) ($RUNS rounds)" \
    --name no-timeout --cmd "$RB $WORK/loop-nolimit.yaml" \
    --name timeout --cmd "$RB $WORK/loop-timeout.yaml"
