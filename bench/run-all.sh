#!/usr/bin/env bash
# Runs every benchmark and writes their markdown tables, with the machine, tool versions and
# exact commands, to bench/out/results.md (the curated copy with the analysis is
# bench/RESULTS.md). Takes a few minutes; the layouts are generated on first use (~1.3 GiB in
# bench/out/).
#
# Usage: bash bench/run-all.sh     (REGCTL=path skips the build; RUNS=N overrides every script)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=bench/out/results.md
mkdir -p bench/out
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
    echo "# Benchmark results ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "- machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
        "$(uname -sr), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "- regctl: ${REGCTL:-release build of} commit $(git log -1 --format=%h -- src bin Cargo.toml Cargo.lock)" \
        "(last change to src/ bin/ Cargo.*)$(git diff --quiet HEAD -- src bin Cargo.toml || echo ', dirty tree')"
    echo "- skopeo: $(skopeo --version 2>/dev/null | awk '{ print $3 }'), docker-registry:" \
        "$(docker-registry --version 2>/dev/null | awk '{ print $3 }')"
    echo
} >"$tmp"
for script in ocidir-copy registry-copy registry-read archive regsync regbot; do
    {
        echo "## bench/$script.sh"
        echo
        echo "Load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo
    } >>"$tmp"
    bash "bench/$script.sh" >>"$tmp"
done
mv "$tmp" "$out"
trap - EXIT
echo "wrote $out" >&2
