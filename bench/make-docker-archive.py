#!/usr/bin/env python3
"""Writes a `docker save`-style tar (manifest.json, config, uncompressed layer tars) whose
layers hold real, compressible files from this machine, unlike the pseudo-random layers of
examples/make-layout.rs (incompressible, where some gzip implementations take a fast path).

  make-docker-archive.py OUT.tar [LAYER_MIB=48] DIR...

One layer per DIR: its regular files in sorted path order, until LAYER_MIB MiB of file data.
Entries have fixed metadata, so the same files give the same digests. Stdlib only.
"""
import hashlib
import io
import json
import os
import sys
import tarfile


def layer(top, limit):
    buf = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for root, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(files):
                p = os.path.join(root, name)
                if not os.path.isfile(p) or os.path.islink(p):
                    continue
                size = os.path.getsize(p)
                if total + size > limit:
                    continue
                info = tarfile.TarInfo(p.lstrip("/"))
                info.size, info.mode, info.mtime = size, 0o644, 0
                with open(p, "rb") as f:
                    t.addfile(info, f)
                total += size
            if total >= limit * 0.98:
                break
    return buf.getvalue()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out = sys.argv[1]
    args = sys.argv[2:]
    mib = 48
    if args[0].isdigit():
        mib = int(args.pop(0))
    layers = [layer(d, mib << 20) for d in args]
    diff_ids = ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers]
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }, separators=(",", ":")).encode()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    names = [d.split(":")[1] + "/layer.tar" for d in diff_ids]
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": ["bench/real:v1"], "Layers": names}]).encode()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        for name, data in [(cfg_name, config), ("manifest.json", manifest)] + list(zip(names, layers)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            t.addfile(info, io.BytesIO(data))
    print(f"{out}: {len(layers)} layers, {sum(map(len, layers)) / 1048576:.1f} MiB")


if __name__ == "__main__":
    main()
