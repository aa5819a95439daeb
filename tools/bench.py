"""``make bench``: how fast sweeper is on a large tenant, in figures, written to BENCHMARKS.md.

The local Graph serves a generated tenant (:mod:`sweeper.fakegraph.bulk`) from its own
process, with a fixed delay on every request to stand for the network. Each measurement
runs sweeper in a fresh process (:mod:`tools.bench_children`), so that its peak resident
memory is its own; the start-up of the real commands is measured by
:mod:`tools.bench_startup`, and the report written by :mod:`tools.bench_report`.

    python -m tools.bench [--mailboxes 2000] [--messages 500] [--latency 0.03]
                          [--sizes 500,1000] [--sdk-mailboxes 16] [--out BENCHMARKS.md]
                          [--tenant TENANT.json]

``--tenant``: a tenant file of :mod:`tools.mbox_tenant` (real mail), on which the CPU ratio
is measured too: sweeper sweeps all of it, the SDK's path reads its first
``--sdk-mailboxes`` mailboxes, over the file's whole date range.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweeper.files import write_private
from tools import bench_children
from tools.bench_report import Figures, Run, report

Nights = dict[int, tuple[list[Run], list[Run]]]


def child(mode: str, **options: Any) -> Run:
    """``python -m tools.bench MODE --OPTION VALUE...`` in a process of its own: its figures."""
    argv = [sys.executable, "-m", "tools.bench", mode]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench {mode} failed:\n{done.stderr[-2000:]}")
    result: Run = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def with_server(
    args: argparse.Namespace,
    mailboxes: int,
    messages: int,
    work: Callable[[str], Run],
    throttle_first: int = 0,
    tenant: str = "",
) -> Run:
    """``work`` given the client settings of a local Graph serving in a process of its own;
    its figures, and the local Graph's CPU."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tools.bench", "serve", "--mailboxes", str(mailboxes),
         "--messages", str(messages), "--latency", str(args.latency),
         "--throttle-first", str(throttle_first), "--tenant", tenant],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdout is not None and server.stdin is not None
    try:
        env = server.stdout.readline()
        if not env:
            raise SystemExit("bench serve failed")
        result = work(env)
    finally:
        server.stdin.close()
        server.wait(60)
    served = server.stdout.read().strip().splitlines()
    if served:
        result.update(json.loads(served[-1]))
    return result


def sweep(args: argparse.Namespace, mailboxes: int, messages: int, page_size: int,
          throttle: int = 0, tenant: str = "", count_sql: bool = False) -> Run:  # fmt: skip
    def work(env: str) -> Run:
        options = {"env": env, "concurrency": args.concurrency, "page_size": page_size}
        return child("sweep", **options, **({"count_sql": 1} if count_sql else {}))

    return with_server(args, mailboxes, messages, work, throttle, tenant)


def sdk(args: argparse.Namespace, mailboxes: int, messages: int, tenant: str = "") -> Run:
    def work(env: str) -> Run:
        return child("sdk", env=env, sdk_mailboxes=args.sdk_mailboxes,
                     page_size=args.page_size, concurrency=args.concurrency)  # fmt: skip

    return with_server(args, mailboxes, messages, work, tenant=tenant)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def sweeps(args: argparse.Namespace) -> tuple[dict[int, Run], Nights]:
    """The full sweep at each size; and the throttled night beside a fault-free one, each
    twice, the faster kept: the two differ by a few seconds, no more than two runs of either
    differ on a shared machine."""
    sizes = sorted({int(s) for s in args.sizes.split(",") if s} | {args.mailboxes})
    runs: dict[int, Run] = {}
    for size in sizes:
        say(f"sweeping {size} mailboxes x {args.messages} messages ...")
        runs[size] = sweep(args, size, args.messages, args.page_size)
    nights: Nights = {}
    for size in sorted({sizes[0], args.mailboxes}):
        say(f"{size} mailboxes again, and with every first read throttled, twice ...")
        calm = [runs[size], sweep(args, size, args.messages, args.page_size)]
        throttled = [
            sweep(args, size, args.messages, args.page_size, args.retry_after) for _ in range(2)
        ]
        nights[size] = (calm, throttled)
    return runs, nights


def orchestrate(args: argparse.Namespace) -> None:
    from tools.bench_startup import measure_startup

    runs, nights = sweeps(args)
    say("the SDK's model objects ...")
    model_path = sdk(args, args.sdk_mailboxes, args.messages)
    pages: dict[int, Run] = {}
    for size in sorted({int(s) for s in args.page_sizes.split(",") if s}):
        say(f"page size {size} ...")
        pages[size] = sweep(args, args.page_mailboxes, args.page_messages, size)
    say("classifier alone ...")
    classifier = child("classifier", mailboxes=200, messages=args.messages)
    say("SQL statements of a sweep ...")
    sql = sweep(args, min(runs), args.messages, args.page_size, count_sql=True)
    say(f"start-up of `sweeper sweep` and `sweeper nightly`, {args.startup_runs} runs each ...")
    startup = measure_startup(args.startup_runs)
    tenant = None
    if args.tenant:
        say("the tenant file: sweeper, then the SDK's model objects ...")
        tenant = (sweep(args, 0, 0, args.page_size, tenant=args.tenant),
                  sdk(args, 0, 0, tenant=args.tenant))  # fmt: skip
    figures = Figures(runs, nights, model_path, pages, classifier, startup, sql, tenant,
                      Path(args.tenant).name)  # fmt: skip
    text = report(args, figures)
    print(text)
    write_private(Path(args.out), text)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.bench")
    p.add_argument("mode", nargs="?", default="all",
                   choices=["all", "serve", "sweep", "sdk", "classifier"])  # fmt: skip
    p.add_argument("--mailboxes", type=int, default=2000)
    p.add_argument("--messages", type=int, default=500)
    p.add_argument("--latency", type=float, default=0.03)
    p.add_argument("--sizes", default="250,500,1000")
    p.add_argument("--sdk-mailboxes", type=int, default=16)
    p.add_argument("--retry-after", type=int, default=2)
    p.add_argument("--throttle-first", type=int, default=0)  # serve: Retry-After, s
    p.add_argument("--page-sizes", default="100,250,500,1000")
    p.add_argument("--page-mailboxes", type=int, default=200)
    p.add_argument("--page-messages", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--page-size", type=int, default=1000)  # the default page_size
    p.add_argument("--startup-runs", type=int, default=5)
    p.add_argument("--tenant", default="", help="a tenant file of tools/mbox_tenant.py")
    p.add_argument("--count-sql", type=int, default=0)  # sweep: count SQL statements
    p.add_argument("--env", default="{}")
    p.add_argument("--out", default="BENCHMARKS.md")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    {
        "all": orchestrate,
        "serve": bench_children.serve,
        "sweep": bench_children.sweep,
        "sdk": bench_children.sdk,
        "classifier": bench_children.classifier,
    }[args.mode](args)


if __name__ == "__main__":
    main()
