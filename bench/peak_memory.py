"""Benchmark: the peak memory of a command's whole process tree (the command and every process
it starts, e.g. the study's training workers), sampled from /proc.

    python bench/peak_memory.py [--interval 0.25] -- mechanism demo --quiet

Every ``--interval`` seconds the tree is walked (parent links in ``/proc/<pid>/stat``) and
each process's resident set (``VmRSS``) and proportional set (``Pss`` in ``smaps_rollup``:
shared pages divided among the processes that map them) are read. Printed: the wall time, the
command's exit status, and the peaks over the samples of the tree's summed PSS (its real
memory: pages shared by the processes, torch's libraries among them, counted once), of its
summed RSS (an upper bound: shared pages counted in every process), of the largest single
process's RSS (what GNU time's "maximum resident set size" reports, but sampled, so a peak
shorter than the interval can be missed) and of the number of processes. Linux only.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

KIB = 1024


def parents() -> dict[int, int]:
    """Every live process's parent, by pid."""
    links = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:                 # ended between the listing and the read
                continue
            links[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    return links


def tree(root: int) -> list[int]:
    """``root`` and its live descendants."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents().items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def field_kib(path: Path, name: str) -> int | None:
    """The ``name:`` line's value in KiB of a /proc status-style file; None if gone or absent."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def sample(root: int) -> tuple[int, int, int, int]:
    """The tree's summed PSS and RSS, its largest RSS (KiB) and its process count, now."""
    pss = rss = largest = count = 0
    for pid in tree(root):
        r = field_kib(Path(f"/proc/{pid}/status"), "VmRSS")
        p = field_kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss")
        if r is None or p is None:           # a zombie or a process that just ended
            continue
        pss, rss, largest, count = pss + p, rss + r, max(largest, r), count + 1
    return pss, rss, largest, count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--interval", type=float, default=0.25, help="seconds between samples")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("give the command to measure after --")
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(command)
    peaks = [0, 0, 0, 0]
    samples = 0
    while proc.poll() is None:
        peaks = [max(a, b) for a, b in zip(peaks, sample(proc.pid))]
        samples += 1
        time.sleep(args.interval)
    wall = time.perf_counter() - start
    print(f"bench/peak_memory.py  {' '.join(command)}", file=sys.stderr)
    print(f"exit status {proc.returncode}; wall {wall / 60:.0f} min {wall % 60:.0f} s; "
          f"{samples} samples every {args.interval} s; load average (1 min) before / after: "
          f"{load:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", file=sys.stderr)
    pss, rss, largest, count = peaks
    for name, kib in (("tree, summed PSS (shared pages once)", pss),
                      ("tree, summed RSS (shared pages in each process)", rss),
                      ("largest single process, RSS", largest)):
        print(f"peak {name:<48} {kib:>10,} KiB = {kib * KIB / 2 ** 30:.2f} GiB", file=sys.stderr)
    print(f"peak processes in the tree: {count}", file=sys.stderr)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
