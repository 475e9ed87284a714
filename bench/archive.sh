#!/usr/bin/env bash
# Tar export / import, regctl vs skopeo, interleaved, with the 3-platform 208 MiB layout
# (bench/out/src). RUNS rounds (after one warm-up round) of:
#   (e1) export, all platforms  ocidir://src:v1 -> tar   vs  skopeo --all oci: -> oci-archive:
#   (e2) export, linux/amd64    ocidir://src:v1 -> tar   vs  skopeo oci: -> docker-archive:
#   (i1) import oci-archive -> fresh OCI layout          (both tools read the same tar)
#   (i2) import docker-archive -> fresh OCI layout       (both tools read the same tar)
#   (r1) import oci-archive -> registry, new repository per run
#   (r2) import docker-archive -> registry, new repository per run
#   (i3) / (r3) as (i2) / (r2) with regctl's own linux/amd64 export read as a docker-archive
#        (gzip layers, which both tools push as they are; skopeo's docker-archive holds
#        uncompressed layers, which both tools gzip on import)
#   (i4) / (r4) as (i2) / (r2) with a docker-archive of real, compressible files (2 layers of
#        ~48 MiB from /usr/share and /usr/lib/<arch>-linux-gnu, bench/make-docker-archive.py;
#        content and digests depend on the machine): the pseudo-random layers above are
#        incompressible, where skopeo's parallel gzip takes a fast path
# The import inputs are the tars skopeo wrote in (e1)/(e2), made once untimed: the standard
# formats as another tool writes them (the docker-archive one holds uncompressed layers, as
# `docker save` does). Before the timed rounds, each tool is also checked to read the other's
# export (interop), untimed. Registry: one throw-away docker-registry on loopback (see lib.sh);
# requests counted from its access log; skopeo gets an empty blob-info cache every run, as in
# registry-copy.sh. Prints markdown tables.
#
# Usage: bash bench/archive.sh     (RUNS=5 by default; REGCTL=path skips the build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/lib.sh

RUNS=${RUNS:-5}
bench_setup
need_tool skopeo skopeo
make_layouts
src=$(realpath "$OUT/src")
start_registry R
R=$R_HOST
RG="$REGCTL --host reg=$R,tls=disabled"
SKC=$WORK/skopeo-cache
SKOPEO="env _CONTAINERS_ROOTLESS_UID=1000 XDG_DATA_HOME=$SKC skopeo --insecure-policy"
PLAT="--override-arch amd64 --override-os linux"
T=$WORK/tars
mkdir -p "$T"

SRC_DIGEST=sha256:$(sha256sum "$src/blobs/sha256/$(python3 -c '
import json, sys
for m in json.load(open(sys.argv[1]))["manifests"]:
    if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "v1":
        print(m["digest"].split(":")[1])' "$src/index.json")" | cut -d' ' -f1)
echo "source: $src:v1 $SRC_DIGEST" >&2

# Untimed reference tars (the import inputs) and interop checks.
$SKOPEO copy -q --all "oci:$src:v1" "oci-archive:$T/all.tar"
$SKOPEO copy -q $PLAT "oci:$src:v1" "docker-archive:$T/amd64.tar"
$REGCTL image export "ocidir://$src:v1" "$T/rg-all.tar"
$REGCTL image export -p linux/amd64 "ocidir://$src:v1" "$T/rg-amd64.tar"
LIBDIR=/usr/lib/$(uname -m)-linux-gnu
[[ -d $LIBDIR ]] || LIBDIR=/usr/lib
python3 bench/make-docker-archive.py "$T/real.tar" 48 /usr/share "$LIBDIR" >&2
ls -l "$T" >&2
interop() { # interop WHAT CMD...: a failure is reported, not fatal
    if "${@:2}" >"$WORK/interop.log" 2>&1; then echo "- $1: ok"; else
        echo "- $1: **failed**: \`$(tail -n 1 "$WORK/interop.log")\`"; fi
}
{
    echo "### Interop (untimed, once)"
    echo
    interop "skopeo reads regctl's all-platform export as oci-archive" \
        $SKOPEO copy -q --all "oci-archive:$T/rg-all.tar" "oci:$WORK/x1:v1"
    interop "skopeo reads regctl's linux/amd64 export as docker-archive" \
        $SKOPEO copy -q "docker-archive:$T/rg-amd64.tar" "oci:$WORK/x2:v1"
    interop "skopeo reads regctl's linux/amd64 export as oci-archive" \
        $SKOPEO copy -q "oci-archive:$T/rg-amd64.tar" "oci:$WORK/x3:v1"
    interop "regctl imports skopeo's oci-archive" $REGCTL image import "ocidir://$WORK/x4:v1" "$T/all.tar"
    interop "regctl imports skopeo's docker-archive" $REGCTL image import "ocidir://$WORK/x5:v1" "$T/amd64.tar"
    echo
    echo "Tar sizes: $(cd "$T" && stat -c '%n %s' *.tar | awk '{ printf "%s%s %.1f MiB", (NR > 1 ? ", " : ""), $1, $2 / 1048576 }')"
    echo "(all.tar / amd64.tar: skopeo's oci-archive / docker-archive; rg-*: regctl's exports)."
    echo
}
rm -rf "$WORK"/x[1-5]

# Checks: a run that "succeeds" without the result must not count.
tar_ok() { echo "tar -tf $1 | grep -qx $2 && rm -f $1"; }
layout_ok() { echo "grep -Eq 'image.ref.name\"[[:space:]]*:[[:space:]]*\"v1\"' $1/index.json && rm -rf $1"; }
ACCEPT='application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json'
ACCEPT+=',application/vnd.docker.distribution.manifest.v2+json,application/vnd.docker.distribution.manifest.list.v2+json'
digest() { # digest REPO -> the digest R serves for REPO:v1
    curl -sfI -H "Accept: $ACCEPT" "http://$R/v2/$1/manifests/v1" |
        tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }'
}
same_digest() { [[ $(digest "$1") == "$SRC_DIGEST" ]]; }
tagged() { [[ $(digest "$1") == sha256:* ]]; }
export -f digest same_digest tagged
export ACCEPT SRC_DIGEST R

"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --baseline skopeo \
    --title "(e1) export ocidir → tar, 3 platforms, 208 MiB ($RUNS rounds)" \
    --name regctl --prepare "rm -f $WORK/e-r.tar" \
    --cmd "$REGCTL image export ocidir://$src:v1 $WORK/e-r.tar" --check "$(tar_ok "$WORK/e-r.tar" index.json)" \
    --name skopeo --prepare "rm -rf $WORK/e-s.tar $SKC" \
    --cmd "$SKOPEO copy -q --all oci:$src:v1 oci-archive:$WORK/e-s.tar" --check "$(tar_ok "$WORK/e-s.tar" index.json)"

"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --baseline skopeo \
    --title "(e2) export ocidir → tar, linux/amd64 only, docker-loadable ($RUNS rounds)" \
    --name regctl --prepare "rm -f $WORK/e-r.tar" \
    --cmd "$REGCTL image export -p linux/amd64 ocidir://$src:v1 $WORK/e-r.tar" \
    --check "$(tar_ok "$WORK/e-r.tar" manifest.json)" \
    --name skopeo --prepare "rm -rf $WORK/e-s.tar $SKC" \
    --cmd "$SKOPEO copy -q $PLAT oci:$src:v1 docker-archive:$WORK/e-s.tar" \
    --check "$(tar_ok "$WORK/e-s.tar" manifest.json)"

"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --baseline skopeo \
    --title "(i1) import oci-archive (3 platforms) → fresh OCI layout ($RUNS rounds)" \
    --name regctl --prepare "rm -rf $WORK/i-r" \
    --cmd "$REGCTL image import ocidir://$WORK/i-r:v1 $T/all.tar" --check "$(layout_ok "$WORK/i-r")" \
    --name skopeo --prepare "rm -rf $WORK/i-s $SKC" \
    --cmd "$SKOPEO copy -q --all oci-archive:$T/all.tar oci:$WORK/i-s:v1" --check "$(layout_ok "$WORK/i-s")"

"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --baseline skopeo \
    --title "(i2) import docker-archive (linux/amd64) → fresh OCI layout ($RUNS rounds)" \
    --name regctl --prepare "rm -rf $WORK/i-r" \
    --cmd "$REGCTL image import ocidir://$WORK/i-r:v1 $T/amd64.tar" --check "$(layout_ok "$WORK/i-r")" \
    --name skopeo --prepare "rm -rf $WORK/i-s $SKC" \
    --cmd "$SKOPEO copy -q docker-archive:$T/amd64.tar oci:$WORK/i-s:v1" --check "$(layout_ok "$WORK/i-s")"

"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --baseline skopeo \
    --title "(i3) import regctl's linux/amd64 export as docker-archive (gzip layers) → fresh OCI layout ($RUNS rounds)" \
    --name regctl --prepare "rm -rf $WORK/i-r" \
    --cmd "$REGCTL image import ocidir://$WORK/i-r:v1 $T/rg-amd64.tar" --check "$(layout_ok "$WORK/i-r")" \
    --name skopeo --prepare "rm -rf $WORK/i-s $SKC" \
    --cmd "$SKOPEO copy -q docker-archive:$T/rg-amd64.tar oci:$WORK/i-s:v1" --check "$(layout_ok "$WORK/i-s")"

"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --baseline skopeo --log "R=$R_LOG" \
    --title "(r1) import oci-archive (3 platforms) → registry, new repository per run ($RUNS rounds)" \
    --show-requests regctl --show-requests skopeo \
    --name regctl --cmd "$RG image import $R/oa-regctl{round}:v1 $T/all.tar" --check "same_digest oa-regctl{round}" \
    --name skopeo --prepare "rm -rf $SKC" \
    --cmd "$SKOPEO copy -q --all --dest-tls-verify=false oci-archive:$T/all.tar docker://$R/oa-skopeo{round}:v1" \
    --check "same_digest oa-skopeo{round}"

"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --baseline skopeo --log "R=$R_LOG" \
    --title "(r2) import docker-archive (linux/amd64) → registry, new repository per run ($RUNS rounds)" \
    --show-requests regctl --show-requests skopeo \
    --name regctl --cmd "$RG image import $R/da-regctl{round}:v1 $T/amd64.tar" --check "tagged da-regctl{round}" \
    --name skopeo --prepare "rm -rf $SKC" \
    --cmd "$SKOPEO copy -q --dest-tls-verify=false docker-archive:$T/amd64.tar docker://$R/da-skopeo{round}:v1" \
    --check "tagged da-skopeo{round}"

"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --baseline skopeo --log "R=$R_LOG" \
    --title "(r3) import regctl's linux/amd64 export as docker-archive (gzip layers) → registry ($RUNS rounds)" \
    --name regctl --cmd "$RG image import $R/dz-regctl{round}:v1 $T/rg-amd64.tar" --check "tagged dz-regctl{round}" \
    --name skopeo --prepare "rm -rf $SKC" \
    --cmd "$SKOPEO copy -q --dest-tls-verify=false docker-archive:$T/rg-amd64.tar docker://$R/dz-skopeo{round}:v1" \
    --check "tagged dz-skopeo{round}"

"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --baseline skopeo \
    --title "(i4) import docker-archive of real files (2 × 48 MiB uncompressed) → fresh OCI layout ($RUNS rounds)" \
    --name regctl --prepare "rm -rf $WORK/i-r" \
    --cmd "$REGCTL image import ocidir://$WORK/i-r:v1 $T/real.tar" --check "$(layout_ok "$WORK/i-r")" \
    --name skopeo --prepare "rm -rf $WORK/i-s $SKC" \
    --cmd "$SKOPEO copy -q docker-archive:$T/real.tar oci:$WORK/i-s:v1" --check "$(layout_ok "$WORK/i-s")"

"${PAIRED[@]}" --rounds "$RUNS" --warmup 1 --baseline skopeo --log "R=$R_LOG" \
    --title "(r4) import docker-archive of real files (2 × 48 MiB uncompressed) → registry ($RUNS rounds)" \
    --name regctl --cmd "$RG image import $R/dr-regctl{round}:v1 $T/real.tar" --check "tagged dr-regctl{round}" \
    --name skopeo --prepare "rm -rf $SKC" \
    --cmd "$SKOPEO copy -q --dest-tls-verify=false docker-archive:$T/real.tar docker://$R/dr-skopeo{round}:v1" \
    --check "tagged dr-skopeo{round}"
