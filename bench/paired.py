#!/usr/bin/env python3
"""Interleaved benchmark of shell commands; prints a markdown table.

  paired.py --rounds 5 [--warmup 1] [--log LABEL=ACCESS_LOG]... [--baseline NAME] \
      [--title TEXT] [--show-requests NAME]... \
      --name regctl --cmd 'regctl image copy A B' [--prepare 'untimed CMD'] [--check 'untimed CMD'] \
      --name skopeo --cmd 'skopeo copy ...' ...

Every round runs each command once, in the order given, and the order is reversed on odd
rounds (A B, B A, A B, ...) so neither tool always runs on a cache the other just warmed.
"{round}" in --cmd/--prepare/--check is replaced by the round number (warm-up rounds are
negative), so a command can write to a fresh repository or directory every round.

Per command: median / min / max wall time, median CPU time (user + system), the median and max
peak RSS (GNU time's %M %U %S, from /usr/bin/time: Debian package "time"), and for each --log (a docker-registry access log) the
number of HTTP requests the run added, by method.  --prepare runs untimed before the command,
--check untimed after it (e.g. to verify a copy landed); their requests are not counted.
--show-requests NAME prints the request sequence of NAME's first timed run (digests and upload
ids folded).  A failing command, prepare or check aborts with its output.  Stdlib only.
"""
import os
import re
import statistics
import subprocess
import sys
import time

TIME = "/usr/bin/time"
ACCESS = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE|OPTIONS) (\S+) HTTP/[0-9.]+" (\d{3}) ')


def usage(msg):
    sys.exit(f"paired.py: {msg}\n\n{__doc__}")


def parse(argv):
    opts = {"rounds": 5, "warmup": 0, "logs": [], "baseline": None, "title": "", "show": [],
            "settle": 0.2}
    cmds = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if i + 1 >= len(argv):
            usage(f"{a} needs a value")
        v = argv[i + 1]
        if a == "--name":
            cmds.append({"name": v, "cmd": None, "prepare": "", "check": ""})
        elif a in ("--cmd", "--prepare", "--check"):
            if not cmds:
                usage(f"{a} before --name")
            cmds[-1][a[2:]] = v
        elif a in ("--rounds", "--warmup"):
            opts[a[2:]] = int(v)
        elif a == "--settle":
            opts["settle"] = float(v)
        elif a == "--log":
            lab, sep, path = v.partition("=")
            opts["logs"].append((lab, path) if sep else (f"log{len(opts['logs']) + 1}", v))
        elif a == "--baseline":
            opts["baseline"] = v
        elif a == "--title":
            opts["title"] = v
        elif a == "--show-requests":
            opts["show"].append(v)
        else:
            usage(f"unknown argument {a}")
        i += 2
    if not cmds or any(c["cmd"] is None for c in cmds):
        usage("every --name needs a --cmd")
    return opts, cmds


def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def requests_since(path, start):
    with open(path, "rb") as f:
        f.seek(start)
        text = f.read().decode("utf-8", "replace")
    out = []
    for line in text.splitlines():
        m = ACCESS.search(line)
        if m:
            out.append((m.group(1), m.group(2), m.group(3)))
    return out


def fold(path):
    path = re.sub(r"sha256(:|%3A)([0-9a-f]{12})[0-9a-f]{52}", r"sha256:\2…", path)
    path = re.sub(r"/blobs/uploads/[0-9a-f-]{36}", "/blobs/uploads/<uuid>", path)
    path = re.sub(r"_state=[^&]*", "_state=…", path)
    return path


def untimed(cmd, what):
    r = subprocess.run(["/bin/bash", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode:
        sys.exit(f"{what} failed (rc={r.returncode}): {cmd}\n{r.stdout.decode('utf-8', 'replace')}")


def timed(cmd):
    """-> (wall seconds, peak RSS KiB, user+system CPU seconds). Aborts on failure."""
    rss_file = f"/tmp/.paired-rss-{os.getpid()}"
    argv = [TIME, "-q", "-f", "%M %U %S", "-o", rss_file, "/bin/bash", "-c", cmd]
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    if p.returncode:
        sys.exit(f"command failed (rc={p.returncode}): {cmd}\n{p.stderr.decode('utf-8', 'replace')}")
    with open(rss_file) as f:
        rss, user, system = f.read().split()[-3:]
    os.unlink(rss_file)
    return wall, int(rss), float(user) + float(system)


def main():
    if not os.access(TIME, os.X_OK):
        sys.exit("paired.py: /usr/bin/time is required (Debian package 'time')")
    opts, cmds = parse(sys.argv[1:])
    res = {c["name"]: {"wall": [], "cpu": [], "rss": [], "reqs": [], "first": None} for c in cmds}
    for rnd in range(-opts["warmup"], opts["rounds"]):
        order = cmds if rnd % 2 == 0 else list(reversed(cmds))
        for c in order:
            sub = lambda s: s.replace("{round}", str(rnd))
            if c["prepare"]:
                untimed(sub(c["prepare"]), f"prepare of {c['name']}")
            starts = [size(p) for _, p in opts["logs"]]
            wall, rss, cpu = timed(sub(c["cmd"]))
            time.sleep(opts["settle"])  # the registry writes its access line after the response
            reqs = []
            for (lab, path), start in zip(opts["logs"], starts):
                reqs += [(m, f"{lab}:{fold(u)}", st) for m, u, st in requests_since(path, start)]
            if c["check"]:
                untimed(sub(c["check"]), f"check of {c['name']}")
            print(f"  round {rnd} {c['name']}: {wall:.3f} s, cpu {cpu:.2f} s, {rss} KiB, {len(reqs)} requests",
                  file=sys.stderr)
            if rnd < 0:
                continue
            r = res[c["name"]]
            r["wall"].append(wall)
            r["rss"].append(rss)
            r["cpu"].append(cpu)
            r["reqs"].append(reqs)
            if r["first"] is None:
                r["first"] = reqs

    base = res.get(opts["baseline"]) if opts["baseline"] else None
    if opts["title"]:
        print(f"### {opts['title']}\n")
    head = ["tool", "median s", "min s", "max s"]
    if base:
        head.append(f"× {opts['baseline']}")
    head += ["CPU s (median)", "peak RSS MiB (median / max)"]
    if opts["logs"]:
        head += ["requests/run", "by method (first run)"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|")
    for c in cmds:
        r = res[c["name"]]
        med = statistics.median(r["wall"])
        row = [c["name"], f"{med:.3f}", f"{min(r['wall']):.3f}", f"{max(r['wall']):.3f}"]
        if base:
            row.append(f"{med / statistics.median(base['wall']):.2f}")
        row.append(f"{statistics.median(r['cpu']):.2f}")
        row.append(f"{statistics.median(r['rss']) / 1024:.1f} / {max(r['rss']) / 1024:.1f}")
        if opts["logs"]:
            counts = sorted({len(q) for q in r["reqs"]})
            meth = {}
            for m, _, _ in r["first"]:
                meth[m] = meth.get(m, 0) + 1
            per_log = {}
            for _, u, _ in r["first"]:
                lab = u.split(":", 1)[0]
                per_log[lab] = per_log.get(lab, 0) + 1
            by = " ".join(f"{k} {v}" for k, v in sorted(meth.items()))
            if len(opts["logs"]) > 1:
                by += " (" + ", ".join(f"{lab} {per_log.get(lab, 0)}" for lab, _ in opts["logs"]) + ")"
            row += ["/".join(map(str, counts)), by]
        print("| " + " | ".join(row) + " |")
    print()
    print("Commands (`{round}` = round number):\n")
    for c in cmds:
        for k in ("prepare", "cmd", "check"):
            if c[k]:
                print(f"- {c['name']} {k}: `{c[k]}`")
    print()
    for name in opts["show"]:
        r = res.get(name)
        if r is None:
            usage(f"--show-requests {name}: no such --name")
        print(f"Requests of {name}'s first timed run:\n\n```")
        for m, u, st in r["first"]:
            print(f"{m} {u} {st}")
        print("```\n")


if __name__ == "__main__":
    main()
