"""Benchmark: the peak memory of a command's whole process tree (the command and every process
it starts, e.g. the study's training workers), sampled from /proc.

    python bench/peak_memory.py [--interval 1.0] -- mechanism demo --quiet

Every ``--interval`` seconds the tree is walked (parent links in ``/proc/<pid>/stat``) and
each process's resident set (``VmRSS``) and proportional set (``Pss`` in ``smaps_rollup``:
shared pages divided among the processes that map them) are read. Printed: the wall time, the
command's exit status, and the peaks over the samples of the tree's summed PSS (its real
memory: pages shared by the processes, torch's libraries among them, counted once), of its
summed RSS (an upper bound: shared pages counted in every process), of the largest single
process's RSS (what GNU time's "maximum resident set size" reports, but sampled, so a peak
shorter than the interval can be missed) and of the number of processes; what each process
held at the PSS peak; and the sampler's own CPU time (reading ``smaps_rollup`` walks each
process's page tables: it takes CPU from the command on a small machine). Linux only.
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


def command_line(pid: int) -> str:
    """The process's command line, shortened to 60 characters."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    line = " ".join(w.decode(errors="replace") for w in words if w)
    return line if len(line) <= 60 else line[:57] + "..."


def sample(root: int) -> dict[int, tuple[int, int]]:
    """PSS and RSS (KiB) of every live process of the tree, by pid, now."""
    found = {}
    for pid in tree(root):
        r = field_kib(Path(f"/proc/{pid}/status"), "VmRSS")
        p = field_kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss")
        if r is not None and p is not None:  # not a zombie nor a process that just ended
            found[pid] = (p, r)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("give the command to measure after --")
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(command)
    peak_pss, peak_at, peak_parts = 0, 0.0, {}
    peak_rss = largest = most = samples = 0
    while proc.poll() is None:
        now = sample(proc.pid)
        pss = sum(p for p, _ in now.values())
        if pss > peak_pss:
            peak_pss, peak_at = pss, time.perf_counter() - start
            peak_parts = {pid: (p, r, command_line(pid)) for pid, (p, r) in now.items()}
        peak_rss = max(peak_rss, sum(r for _, r in now.values()))
        largest = max([largest, *(r for _, r in now.values())])
        most, samples = max(most, len(now)), samples + 1
        time.sleep(args.interval)
    wall = time.perf_counter() - start
    out = sys.stderr      # the command's own output stays on stdout
    print(f"bench/peak_memory.py  {' '.join(command)}", file=out)
    print(f"exit status {proc.returncode}; wall {wall // 60:.0f} min {wall % 60:.0f} s; "
          f"{samples} samples every {args.interval} s, the sampler's own CPU time "
          f"{time.process_time():.1f} s; load average (1 min) before / after: "
          f"{load:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", file=out)
    for name, kib in (("tree, summed PSS (shared pages once)", peak_pss),
                      ("tree, summed RSS (shared pages in each process)", peak_rss),
                      ("largest single process, RSS", largest)):
        print(f"peak {name:<48} {kib:>10,} KiB = {kib * KIB / 2 ** 30:.2f} GiB", file=out)
    print(f"peak processes in the tree: {most}", file=out)
    print(f"the tree at its PSS peak ({peak_at:.0f} s in):", file=out)
    for pid, (p, r, line) in sorted(peak_parts.items(), key=lambda item: -item[1][0]):
        print(f"  pid {pid:>7}  PSS {p:>10,} KiB  RSS {r:>10,} KiB  {line}", file=out)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
