"""Benchmark: the peak memory of a command's whole process tree (the command and every process
it starts, e.g. the study's training workers), sampled from /proc.

    python bench/peak_memory.py [--interval 1.0] -- mechanism demo --quiet

The sampler makes itself a child subreaper, so a descendant whose parent ends stays in the
tree, and samples until no descendant is left. Every ``--interval`` seconds it walks its
descendants (parent links in ``/proc/<pid>/stat``) and reads each one's ``smaps_rollup``:
``Pss`` (the proportional set: each shared page divided among the processes mapping it, those
outside the tree too) and ``Private_Clean`` + ``Private_Dirty`` (the unique set, USS: pages no
other process maps). Printed: the wall time and exit status; the peaks over the samples of the
tree's summed PSS (its proportional share of the machine's memory), of its summed USS (a lower
bound: what ending the tree would free at least) and of its summed RSS (an upper bound: shared
pages counted in every process); the largest ``VmHWM`` of any process (its exact resident
peak, what GNU time's "maximum resident set size" reports for the largest one; read at each
sample, so a process that starts and ends between two samples is missed); what each process
held at the PSS peak; the processes a sample could not read; and the sampler's own CPU time
(reading ``smaps_rollup`` walks page tables: it takes CPU from the command on a small
machine). Linux only. The exit status is the command's (128 + N for signal N); interrupted
(Ctrl-C or SIGTERM), the sampler stops the tree, reports what it saw and exits 130 or 143.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

KIB = 1024
PR_SET_CHILD_SUBREAPER = 36


@dataclass
class Peaks:
    """Peaks over the samples (KiB), what the tree held at the PSS peak, and what was unread."""
    pss: int = 0
    uss: int = 0
    rss: int = 0
    hwm: int = 0
    processes: int = 0
    samples: int = 0
    pss_at: float = 0.0
    at_pss_peak: dict[int, tuple[int, int, str]] = field(default_factory=dict)
    unread: set[int] = field(default_factory=set)


def descendants(root: int) -> tuple[list[int], list[int]]:
    """The live descendants of ``root`` (not ``root`` itself), and those that are its children."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:                 # ended between the listing and the read
                continue
            parent = int(stat[stat.rindex(")") + 2:].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found, children.get(root, [])


def fields_kib(path: Path, names: tuple[str, ...]) -> dict[str, int] | None:
    """The ``name:`` lines' values in KiB of a /proc status-style file; None if unreadable or
    a name is missing (a zombie has no memory lines)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in names:
            values[name] = int(rest.split()[0])
    return values if len(values) == len(names) else None


def command_line(pid: int) -> str:
    """The process's command line, shortened to 60 characters."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    line = " ".join(w.decode(errors="replace") for w in words if w)
    return line if len(line) <= 60 else line[:57] + "..."


def sample(pids: list[int], peaks: Peaks, elapsed: float) -> None:
    """Read ``pids``' memory now and raise ``peaks`` where it is higher."""
    now = {}
    for pid in pids:
        rollup = fields_kib(Path(f"/proc/{pid}/smaps_rollup"),
                            ("Rss", "Pss", "Private_Clean", "Private_Dirty"))
        status = fields_kib(Path(f"/proc/{pid}/status"), ("VmHWM",))
        if status is not None:
            peaks.hwm = max(peaks.hwm, status["VmHWM"])
        if rollup is None:
            if status is not None:           # alive with memory, yet smaps_rollup unreadable
                peaks.unread.add(pid)
            continue                         # else a zombie, or a process that just ended
        now[pid] = rollup
    pss = sum(r["Pss"] for r in now.values())
    if pss > peaks.pss:
        peaks.pss, peaks.pss_at = pss, elapsed
        peaks.at_pss_peak = {pid: (r["Pss"], r["Rss"], command_line(pid)) for pid, r in now.items()}
    peaks.uss = max(peaks.uss, sum(r["Private_Clean"] + r["Private_Dirty"] for r in now.values()))
    peaks.rss = max(peaks.rss, sum(r["Rss"] for r in now.values()))
    peaks.processes = max(peaks.processes, len(now))
    peaks.samples += 1


def exit_status(returncode: int) -> int:
    """A shell's exit status for a ``Popen.returncode`` (−N: killed by signal N → 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


def report(command: list[str], returncode: int, wall: float, peaks: Peaks, interval: float,
           load: float, stopped: bool) -> None:
    out = sys.stderr      # the command's own output stays on stdout
    minutes, seconds = divmod(round(wall), 60)
    status = (f"interrupted: the sampler stopped the tree (the command's exit status "
              f"{exit_status(returncode)})" if stopped else f"exit status {exit_status(returncode)}")
    print(f"bench/peak_memory.py  {' '.join(command)}", file=out)
    print(f"{status}; wall {minutes} min {seconds} s; {peaks.samples} samples (every {interval} s "
          f"asked, {wall / max(peaks.samples, 1):.2f} s taken), the sampler's own CPU time "
          f"{time.process_time():.1f} s; load average (1 min) before / after: "
          f"{load:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", file=out)
    if peaks.pss == 0:
        print("no sample read any process's memory: nothing to report", file=out)
        return
    for name, kib in (("tree, summed PSS (its proportional share)", peaks.pss),
                      ("tree, summed USS (private pages: a lower bound)", peaks.uss),
                      ("tree, summed RSS (shared pages in each: an upper bound)", peaks.rss),
                      ("largest single process, VmHWM", peaks.hwm)):
        print(f"peak {name:<56} {kib:>10,} KiB = {kib * KIB / 2 ** 30:.2f} GiB", file=out)
    print(f"peak processes in the tree: {peaks.processes}", file=out)
    print(f"the tree at its PSS peak ({peaks.pss_at:.0f} s in):", file=out)
    for pid, (p, r, line) in sorted(peaks.at_pss_peak.items(), key=lambda item: -item[1][0]):
        print(f"  pid {pid:>7}  PSS {p:>10,} KiB  RSS {r:>10,} KiB  {line}", file=out)
    if peaks.unread:
        print(f"processes whose smaps_rollup could not be read (not counted): "
              f"{', '.join(map(str, sorted(peaks.unread)))}", file=out)


def stop_tree(proc: subprocess.Popen, me: int, grace: float = 10.0) -> None:
    """SIGTERM to the command, then to every descendant left (re-listed each round), SIGKILL
    after ``grace`` seconds; reaps them all. Further Ctrl-C and SIGTERM are ignored meanwhile."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    proc.send_signal(signal.SIGTERM)         # a no-op once the command has been reaped
    deadline = time.monotonic() + grace
    while True:
        pids, children = descendants(me)
        if not pids:
            return
        kill = signal.SIGKILL if time.monotonic() > deadline else signal.SIGTERM
        for pid in pids:
            try:
                os.kill(pid, kill)
            except ProcessLookupError:
                pass
        proc.poll()
        for child in set(children) - {proc.pid}:
            try:
                os.waitpid(child, os.WNOHANG)
            except ChildProcessError:
                pass
        time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between samples (> 0)")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("give the command to measure after --")
    if not args.interval > 0:
        ap.error(f"--interval must be > 0 seconds, got {args.interval}")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"error: cannot become a child subreaper: {os.strerror(ctypes.get_errno())}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # caught as SystemExit below
    load = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(command)
    except OSError as error:
        sys.exit(f"error: cannot start {command[0]}: {error.strerror}")
    me, peaks, interrupted = os.getpid(), Peaks(), None
    try:
        while True:
            pids, children = descendants(me)
            if not pids:
                break
            sample(pids, peaks, time.perf_counter() - start)
            for orphan in set(children) - {proc.pid}:   # descendants that outlived their parent
                try:
                    os.waitpid(orphan, os.WNOHANG)
                except ChildProcessError:
                    pass
            if proc.poll() is None:          # its end cuts the wait short: look again at once
                try:
                    proc.wait(timeout=args.interval)
                except subprocess.TimeoutExpired:
                    pass
            else:                            # only orphans remain: sample them at the interval
                time.sleep(args.interval)
    except KeyboardInterrupt:
        interrupted = 130
    except SystemExit as stop:               # SIGTERM
        interrupted = stop.code
    wall = time.perf_counter() - start
    if interrupted is not None:
        stop_tree(proc, me)
    report(command, proc.returncode, wall, peaks, args.interval, load, interrupted is not None)
    sys.exit(interrupted if interrupted is not None else exit_status(proc.returncode))


if __name__ == "__main__":
    main()
