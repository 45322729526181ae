"""Benchmark: one flow training epoch on cached features, the code of a reference commit vs today's.

    python bench/flow_speed.py [--reference 28cfa69] [--images 200] [--repeats 3] [--threads 2]
                               [--flops-only]

Each timing runs in a fresh subprocess: ``fit_flow`` with the default ``FlowConfig`` of that
code (the real loop: Tail-Aware Loss λ = 0.7, r = 2%, AdamW, batch 16) on the same synthetic
features ``(N, 40, 28, 28)``, the default backbone's grid (an epoch's cost does not depend on
the values); the second epoch of a two-epoch training is timed. Each child runs in the code's
own folder (``python -c`` puts the working directory first on ``sys.path``) and reports the
``mechanism`` it imported, which must be that code's. The reference code is
``git archive``d from ``--reference`` (default: the last commit before the joint subnet,
whose default is two subnets of width 128) into a temporary folder. Reference and today's
code alternate ``--repeats`` times so load changes hit both alike; the table gives the median
and the range.

Also printed: FLOPs per epoch (torch's flop counter, forward + backward of each code's default
flow on a batch cut as that code trains it — in micro-batches where it has them — counted by
that code in its own subprocess: the two do different arithmetic for the same architecture,
since today's multiplies the positional condition once per call), the machine's matmul
throughput (1024³ matmul in float32 and in bfloat16) and the floor they imply for each code's
arithmetic (float32; bfloat16 where training runs under autocast), today's idle epoch at one
thread (the floor of any thread policy that gives up a busy core), and today's epoch beside one
busy core (the bench starts a spinning process and stops it) with the count fixed (the default)
and with ``--threads auto`` (threads follow the idle cores). Today's fixed-thread runs, idle and
busy, also report where the epoch goes: a micro-batch's wall time, the CPU time of the pool
thread that ran it (so the share of a core that thread got), and a step's wall time (the
micro-batches, their meeting and the gradient sum), against the share of a core each thread
gets when the training's threads and the spinner share the cores fairly. Quote ratios with the
load average printed beside them: the machine is shared.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
EPOCH = """
import torch, sys
from mechanism.flow import FlowConfig
from mechanism.train.config import TrainConfig
from mechanism.train.fit import fit_flow
from mechanism.train.loss import TailLossConfig
torch.set_num_threads({threads})
x = torch.randn({images}, 40, 28, 28, generator=torch.Generator().manual_seed(0))
_, log = fit_flow(x, FlowConfig(), TailLossConfig(), TrainConfig(epochs=2), progress=False)
import mechanism
print(mechanism.__file__, log[-1].seconds)
"""
TRACED = EPOCH.replace("from mechanism.train.fit import fit_flow", """from mechanism.train.fit import fit_flow
import json, statistics, time
from mechanism.train.parallel import ParallelStep
micro, steps = [], []
run, call = ParallelStep._run, ParallelStep.__call__
def timed_run(self, *args):          # one micro-batch: its wall time and its thread's CPU time
    wall, cpu = time.perf_counter(), time.thread_time()
    out = run(self, *args)
    micro.append((time.perf_counter() - wall, time.thread_time() - cpu))
    return out
def timed_call(self, *args):         # one step: its micro-batches, the meeting, the gradient sum
    wall, first = time.perf_counter(), len(micro)
    out = call(self, *args)
    steps.append((time.perf_counter() - wall, micro[first:]))
    return out
ParallelStep._run, ParallelStep.__call__ = timed_run, timed_call""").replace(
    "print(mechanism.__file__, log[-1].seconds)", """assert len(steps) % 2 == 0, "two epochs of equal steps"
timed = steps[len(steps) // 2:]                 # the second (timed) epoch's steps
pieces = max(len(m) for _, m in timed)
full = [(wall, m) for wall, m in timed if len(m) == pieces]   # not the last, partial batch
print(mechanism.__file__, json.dumps({{"epoch": log[-1].seconds, "threads": log[-1].threads,
      "micro_wall": statistics.median(w for _, m in full for w, _ in m),
      "micro_cpu": statistics.median(c for _, m in full for _, c in m),
      "step": statistics.median(wall for wall, _ in full),
      "steps": sum(wall for wall, _ in timed), "full_steps": len(full), "all_steps": len(timed)}}))""")
FLOPS = """
import torch
from torch.utils.flop_counter import FlopCounterMode
from mechanism.flow import FlowConfig, PatchFlow, patch_nll
import mechanism
try:       # the pieces a batch is trained in (micro-batches since 3a562a7; per-call work differs)
    from mechanism.train.parallel import micro_batch_sizes
    pieces = micro_batch_sizes({batch})
except ImportError:
    pieces = [{batch}]
flow = PatchFlow(40, 28, 28, FlowConfig())
with FlopCounterMode(display=False) as counter:
    for piece in pieces:
        patch_nll(flow(torch.randn(piece, 40, 28, 28))).mean().backward()
print(mechanism.__file__, counter.get_total_flops() * {images} / {batch})
"""


def spin() -> None:
    """Keep one core busy until terminated."""
    while True:
        pass


def checkout(rev: str, into: Path) -> Path:
    """The tree of commit ``rev`` of this repository, extracted under ``into``."""
    archive = into / "ref.tar"
    with open(archive, "wb") as f:
        subprocess.run(["git", "-C", str(ROOT), "archive", rev], stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "ref", filter="data")
    return into / "ref"


def child_output(code: Path, program: str, env: dict[str, str] | None = None) -> str:
    """What a ``python -c program`` run in the code under ``code`` prints after the module file
    it prints first, which must be that code's ``mechanism``."""
    env = {**os.environ, "PYTHONPATH": str(code), **(env or {})}
    out = subprocess.run([sys.executable, "-c", program], env=env, cwd=code, capture_output=True,
                         text=True, check=True)
    module, rest = out.stdout.split(maxsplit=1)
    if Path(module).resolve() != (code / "mechanism" / "__init__.py").resolve():
        raise SystemExit(f"error: the child imported {module}, not the code under {code}")
    return rest


def run_child(code: Path, program: str, env: dict[str, str] | None = None) -> float:
    """The number a ``python -c program`` prints last, run in the code under ``code``."""
    return float(child_output(code, program, env).split()[-1])


def epoch_seconds(code: Path, images: int, threads: int, fixed: bool) -> float:
    """Seconds of the second epoch of a two-epoch ``fit_flow`` run by the code under ``code``,
    at ``threads`` threads fixed, or (``fixed=False``) with the policy that follows idle cores."""
    return run_child(code, EPOCH.format(threads=threads, images=images),
                     {"MECHANISM_THREADS": str(threads) if fixed else "auto"})


def traced_epoch(images: int, threads: int) -> dict[str, float]:
    """Today's second epoch at ``threads`` fixed threads, with its parts: ``epoch`` (seconds);
    ``threads``, the threads a step kept busy (the log's); over the epoch's full steps (not
    the last, partial batch) the medians of a micro-batch's wall time ``micro_wall``, of the
    CPU time of the thread that ran it ``micro_cpu``, and of a step's wall time ``step`` (its
    micro-batches, their meeting and the gradient sum); ``steps``, the epoch's steps' summed
    wall time, and the step counts. The child wraps ``ParallelStep`` to time them (four clock
    reads a micro-batch, two a step)."""
    return json.loads(child_output(ROOT, TRACED.format(threads=threads, images=images),
                                   {"MECHANISM_THREADS": str(threads)}))


def epoch_flops(code: Path, images: int, batch: int = 16) -> float:
    """FLOPs (2 per multiply-add) of one epoch's forward + backward passes of the default flow
    of the code under ``code``, on batches of ``batch`` cut as that code trains them, counted by
    that code."""
    return run_child(code, FLOPS.format(images=images, batch=batch))


def matmul_gflops(threads: int, dtype: torch.dtype = torch.float32) -> float:
    """Median 1024³ matmul throughput in GFLOP/s at ``threads`` threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(1024, 1024, dtype=dtype), torch.randn(1024, 1024, dtype=dtype)
    times = []
    for _ in range(12):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * 1024 ** 3 / statistics.median(times[2:]) / 1e9


def positive(text: str) -> int:
    """An argparse type: a whole number ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 1, got {value}")
    return value


def spread(times: list[float]) -> str:
    return f"{statistics.median(times):6.2f} s  [{min(times):.2f}, {max(times):.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", default="28cfa69", help="commit whose code is the reference")
    ap.add_argument("--images", type=positive, default=200, help="feature maps per epoch (≥ 1)")
    ap.add_argument("--repeats", type=positive, default=3, help="timings of each kind (≥ 1)")
    ap.add_argument("--threads", type=positive, default=2, help="training threads (≥ 1)")
    ap.add_argument("--flops-only", action="store_true",
                    help="print each code's GFLOP per epoch and stop (no timings)")
    args = ap.parse_args()
    from mechanism.train.config import TrainConfig

    work = Path(tempfile.mkdtemp(prefix="bench-flow-speed-"))
    codes = {f"reference ({args.reference})": checkout(args.reference, work), "today": ROOT}
    if args.flops_only:
        for name, code in codes.items():
            print(f"{name:<22} {epoch_flops(code, args.images) / 1e9:.1f} GFLOP per epoch of {args.images} images")
        return
    load = [os.getloadavg()[0]]
    gflops = {"fp32": matmul_gflops(args.threads), "bf16": matmul_gflops(args.threads, torch.bfloat16)}
    idle: dict[str, list[float]] = {name: [] for name in codes}
    one_thread: list[float] = []
    parts: dict[str, list[dict[str, float]]] = {"idle": [], "beside one busy core": []}
    for _ in range(args.repeats):
        for name, code in codes.items():
            if code == ROOT:
                parts["idle"].append(traced_epoch(args.images, args.threads))
                idle[name].append(parts["idle"][-1]["epoch"])
            else:
                idle[name].append(epoch_seconds(code, args.images, args.threads, fixed=True))
        one_thread.append(epoch_seconds(ROOT, args.images, 1, fixed=True))
    load.append(os.getloadavg()[0])

    spinner = multiprocessing.get_context("spawn").Process(target=spin, daemon=True)
    spinner.start()
    time.sleep(2.0)
    try:
        parts["beside one busy core"] = [traced_epoch(args.images, args.threads)
                                         for _ in range(args.repeats)]
        busy = {f"{args.threads} threads fixed (default)":
                [p["epoch"] for p in parts["beside one busy core"]],
                "--threads auto (follow idle cores)":
                [epoch_seconds(ROOT, args.images, args.threads, fixed=False)
                 for _ in range(args.repeats)]}
    finally:
        spinner.terminate()
        spinner.join()
    load.append(os.getloadavg()[0])

    print(f"bench/flow_speed.py  {args.images} images × (40, 28, 28), batch 16, "
          f"{args.threads} threads, {args.repeats} repeats")
    print(f"load average (1 min) before / after idle runs / after busy runs: "
          f"{' / '.join(f'{v:.2f}' for v in load)} on {len(os.sched_getaffinity(0))} cores")
    print(f"matmul throughput (1024³): {gflops['fp32']:.0f} GFLOP/s float32, "
          f"{gflops['bf16']:.0f} GFLOP/s bfloat16")
    arithmetic = {f"reference ({args.reference})": "fp32", "today": TrainConfig().precision}
    ref = statistics.median(idle[next(iter(codes))])
    print(f"\n{'code':<22} {'arith':>5} {'s/epoch median [range]':>26} {'GFLOP/epoch':>12} "
          f"{'GFLOP/s':>8} {'floor s':>8} {'speed-up':>9}")
    for name in codes:
        arith = arithmetic[name]
        flops = epoch_flops(codes[name], args.images)
        med = statistics.median(idle[name])
        print(f"{name:<22} {arith:>5} {spread(idle[name]):>26} {flops / 1e9:>12.1f} "
              f"{flops / med / 1e9:>8.1f} {flops / gflops[arith] / 1e9:>8.2f} {ref / med:>8.2f}×")
    base = statistics.median(idle["today"])
    print(f"\ntoday at 1 thread, idle: {spread(one_thread)}  = {statistics.median(one_thread) / base:.2f}× "
          f"the {args.threads}-thread epoch (what losing a core costs when the work is not shared)")
    print(f"\nbeside one busy core (today's code; idle epoch {base:.2f} s):")
    for policy, times in busy.items():
        print(f"  {policy:<38} {spread(times)}   slowdown {statistics.median(times) / base:.2f}×")
    print_parts(parts, args.threads)


def print_parts(parts: dict[str, list[dict[str, float]]], threads: int) -> None:
    """Where today's fixed-thread epoch goes, idle and busy, against the fair share of a core."""
    med = {state: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
           for state, runs in parts.items()}
    first = parts["idle"][0]
    print(f"\nwhere today's {threads}-thread epoch goes (per run: medians over the second "
          f"epoch's {first['full_steps']} full steps of {first['all_steps']} and their "
          f"micro-batches; then the median over the runs; CPU share = CPU / wall of those medians):")
    print(f"  {'':<22} {'micro-batch wall':>17} {'its thread CPU':>15} {'CPU share':>10} "
          f"{'step':>9} {'step / micro-batch':>19} {'epoch − its steps':>18}")
    for state, m in med.items():
        print(f"  {state:<22} {1e3 * m['micro_wall']:>14.1f} ms {1e3 * m['micro_cpu']:>12.1f} ms "
              f"{m['micro_cpu'] / m['micro_wall']:>10.2f} {1e3 * m['step']:>6.1f} ms "
              f"{m['step'] / m['micro_wall']:>18.2f}× {1e3 * (m['epoch'] - m['steps']):>15.0f} ms")
    cores = len(os.sched_getaffinity(0))
    busy_threads = int(med["idle"]["threads"])     # at most one per micro-batch
    fair = min(1.0, cores / (busy_threads + 1))
    idle, busy = med["idle"], med["beside one busy core"]
    print(f"  fair share of a core for each of the {busy_threads} busy training threads + 1 "
          f"spinner (in the training's session) on {cores} cores: {fair:.2f}; at that share an "
          f"idle micro-batch's CPU time takes {idle['micro_cpu'] / fair / idle['micro_wall']:.2f}× "
          f"its idle wall time (measured busy: {busy['micro_wall'] / idle['micro_wall']:.2f}×; "
          f"step {busy['step'] / idle['step']:.2f}×)")


if __name__ == "__main__":
    main()
