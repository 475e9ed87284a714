# Shared by the bench/*.sh scripts (sourced, not run). Expects `set -euo pipefail` and the
# current directory at the repository root.
#
#   bench_setup            checks tools, builds regctl + make-layout (unless REGCTL is set),
#                          sets REGCTL, GEN, OUT, WORK (a temp dir removed on exit)
#   make_layouts [big]     generates $OUT/src (3 platforms, 208 MiB) and, with "big", $OUT/big
#   start_registry NAME    starts docker-registry on a free loopback port with its storage and
#                          access log under $WORK/NAME; sets NAME_HOST and NAME_LOG; it is
#                          killed on exit

OUT=${OUT:-bench/out}
TARGET=${CARGO_TARGET_DIR:-target}
REG_PIDS=()

bench_cleanup() {
    local pid
    for pid in "${REG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${REG_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n ${WORK:-} && -d $WORK ]]; then rm -rf "$WORK"; fi
}

need_tool() { # need_tool COMMAND DEBIAN_PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq "$2" >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null && apt-get install -y -qq "$2" >/dev/null; }
    fi
    command -v "$1" >/dev/null 2>&1 || { echo "error: $1 (Debian package '$2') is required" >&2; exit 1; }
}

bench_setup() {
    need_tool /usr/bin/time time
    need_tool python3 python3
    need_tool curl curl
    if [[ -z ${REGCTL:-} ]]; then
        cargo build --release --quiet --bin regctl --example make-layout
        REGCTL=$TARGET/release/regctl
    fi
    REGCTL=$(realpath "$REGCTL")
    GEN=${GEN:-$TARGET/release/examples/make-layout}
    if [[ ! -x $GEN ]]; then
        cargo build --release --quiet --example make-layout
    fi
    GEN=$(realpath "$GEN")
    mkdir -p "$OUT"
    # Scratch space on the same disk as the layouts (not a tmpfs /tmp: copies of 208 MiB).
    WORK=$(mktemp -d "$(realpath "$OUT")/work.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    PAIRED=(python3 bench/paired.py)
}

# index.json is written last, so its presence means a complete layout.
make_layouts() {
    if [[ ! -f $OUT/src/index.json ]]; then
        "$GEN" "$OUT/src" --platforms linux/amd64,linux/arm64,linux/arm/v7 \
            --layers-per-platform 4 --layer-size 16M --shared-base-layers 1 --seed 42 --tag v1 >/dev/null
    fi
    if [[ ${1:-} == big && ! -f $OUT/big/index.json ]]; then
        "$GEN" "$OUT/big" --platforms linux/amd64 --layers-per-platform 1 --layer-size 1G \
            --no-index --seed 42 --tag v1 >/dev/null
    fi
}

free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    echo "error: no free port" >&2
    exit 1
}

start_registry() {
    need_tool docker-registry docker-registry
    local name=$1 dir port pid i code
    dir=$WORK/$name
    mkdir -p "$dir/data"
    port=$(free_port)
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$port
  secret: bench-$name-$RANDOM$RANDOM
EOF
    docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null &
    pid=$!
    REG_PIDS+=("$pid")
    for ((i = 0; i < 100; i++)); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" 2>/dev/null || true)
        [[ $code == 200 ]] && break
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    if [[ $code != 200 ]]; then
        tail -n 20 "$dir/registry.log" >&2
        echo "error: registry $name did not answer on 127.0.0.1:$port" >&2
        exit 1
    fi
    printf -v "${name}_HOST" '%s' "127.0.0.1:$port"
    printf -v "${name}_LOG" '%s' "$dir/registry.log"
}

# release_bin NAME: path of the release build of NAME (building it), or of $OVERRIDE when the
# caller passes one (`REGSYNC=path bash bench/regsync.sh` skips the build).
release_bin() { # release_bin NAME [OVERRIDE]
    local name=$1 override=${2:-}
    if [[ -z $override ]]; then
        cargo build --release --quiet --bin "$name"
        override=$TARGET/release/$name
    fi
    realpath "$override"
}

# seed_bench_repo HOST TAGS: HOST/bench with TAGS tags (v1, t001, ...) of testdata/testrepo:v1,
# pushed from a private copy (the fixture is read-only by convention).
seed_bench_repo() {
    local host=$1 tags=$2 rg="$REGCTL --host reg=$1,tls=disabled" i n
    cp -r testdata/testrepo "$WORK/testrepo"
    $rg image copy "ocidir://$WORK/testrepo:v1" "$host/bench:v1" >/dev/null
    for ((i = 1; i < tags; i++)); do
        $rg image copy "$host/bench:v1" "$(printf '%s/bench:t%03d' "$host" "$i")" >/dev/null
    done
    n=$($rg tag ls "$host/bench" | grep -vc '^sha256-')
    [[ $n -eq $tags ]] || { echo "error: $host/bench has $n tags, want $tags" >&2; exit 1; }
}

# config_head HOST...: the `defaults` and `creds` part of a regsync/regbot config for
# plain-http HOSTs, without docker's logins.
config_head() {
    printf 'defaults:\n  skipDockerConfig: true\ncreds:\n'
    local h
    for h in "$@"; do
        printf '  - registry: %s\n    tls: disabled\n' "$h"
    done
}
