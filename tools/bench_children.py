"""The processes ``make bench`` measures (:mod:`tools.bench` starts each in its own).

``serve``: the local Graph with a generated tenant, or a tenant file; ``sweep``: sweeper's
sweep, a cold full one then a quiet incremental night; ``sdk``: the same Sent Items read
the straightforward way, through the SDK's model objects; ``classifier``: decoding and
classifying alone. Each prints its figures as one line of JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from sweeper import store
from sweeper.commands.sweep import Window, sweep_tenant
from sweeper.graph.answers import User, parse_page
from sweeper.graph.gateway import GraphGateway
from sweeper.graph.paging import Paging
from sweeper.graph.requests import MESSAGE_FIELDS
from sweeper.graph.signin import gateway_for
from sweeper.rules.classify import Policy, classify
from sweeper.rules.pages import classify_page
from sweeper.settings import load_settings
from sweeper.when import iso

DAY = timedelta(hours=24, minutes=15)  # a night's window, its overlap included


def serve(args: argparse.Namespace) -> None:
    """The local Graph with a bulk tenant (or ``--tenant``'s file); prints its client
    settings and the window to sweep, then waits."""
    from sweeper.fakegraph import FakeGraph
    from sweeper.fakegraph.bulk import BulkTenant

    if args.tenant:
        from tools.corpus_sweep import corpus_window
        from tools.mbox_tenant import load_tenant

        tenant = load_tenant(Path(args.tenant))
        since, until = corpus_window(tenant)
        now = datetime.fromisoformat(until) - timedelta(seconds=1)
    else:  # all mail is kept once made: the second night measures sweeper, not the fake
        tenant = BulkTenant(args.mailboxes, args.messages, cache=None)
        now = tenant.now
        since = iso(now + timedelta(seconds=1) - DAY)
    with FakeGraph(tenant, latency=args.latency) as fake:
        if args.throttle_first:  # Graph's usual night: each mailbox's first read throttled
            fake.add_fault(path="/messages", retry_after=args.throttle_first, each_mailbox=True)
        window = {"NOW": now.isoformat(), "SINCE": since}
        print(json.dumps({**fake.client_env(), **window}), flush=True)
        ready = time.process_time()
        sys.stdin.read()  # until the parent closes the pipe
        # What serving cost the local Graph (making the mail included): it shares the cores.
        print(json.dumps({"graph_cpu_seconds": time.process_time() - ready}), flush=True)


def settings_for(env: dict[str, str], concurrency: int, page_size: int) -> Any:
    return load_settings(
        None,
        env,
        overrides={
            "graph": {"cloud": "custom"},
            "sweep": {"concurrency": concurrency, "page_size": page_size},
        },
    )


def window_of(env: dict[str, str]) -> Window:
    """The window ``serve`` named: a night of the bulk tenant, or a tenant file's mail."""
    now = datetime.fromisoformat(env["NOW"]) + timedelta(seconds=1)
    return Window(datetime.fromisoformat(env["SINCE"]), now)


class StatementCounter:
    """Counts the SQL statements SQLite runs on a connection (its trace callback)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, statement: str) -> None:
        self.count += 1


def sweep(args: argparse.Namespace) -> None:
    """A cold full sweep, then a quiet incremental night; prints figures as JSON."""
    import sweeper.cli  # noqa: F401  (what `sweeper sweep` loads before it sweeps)

    env = {**os.environ, **json.loads(args.env)}
    settings = settings_for(env, args.concurrency, args.page_size)
    window = window_of(env)
    counter = StatementCounter()
    with tempfile.TemporaryDirectory() as work:
        db = store.open_db(Path(work) / "bench.db")
        if args.count_sql:  # only in a run of its own: the counting costs CPU
            db.conn.set_trace_callback(counter)
        # Start-up: the interpreter, the imports, the settings and the database, until the
        # sweep begins (process_time is the process's user + system time since it began).
        startup_cpu = time.process_time()
        started = time.perf_counter()
        cold = asyncio.run(sweep_tenant(replace(settings), env, db, window))
        cold_seconds, cold_cpu = time.perf_counter() - started, time.process_time() - startup_cpu
        cold_sql, later = counter.count, window.until + timedelta(hours=24)
        started = time.perf_counter()
        quiet_window = Window(later - DAY, later)
        quiet = asyncio.run(sweep_tenant(settings, env, db, quiet_window, incremental=True))
        quiet_seconds = time.perf_counter() - started
    figures = {
        "mailboxes": cold.totals.swept,
        "messages": cold.totals.messages_read,
        "findings": cold.totals.findings_new,
        "failed": cold.totals.failed,
        "seconds": cold_seconds,
        "cpu_seconds": cold_cpu,
        "startup_cpu_seconds": startup_cpu,
        "requests": cold.requests,
        "throttled": cold.totals.throttled,
        "quiet_requests": quiet.requests,
        "quiet_seconds": quiet_seconds,
        "quiet_mailboxes": quiet.totals.swept,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if args.count_sql:
        figures |= {"cold_sql": cold_sql, "quiet_sql": counter.count - cold_sql}
    print(json.dumps(figures))


def sdk(args: argparse.Namespace) -> None:
    """The straightforward tool, through the SDK's request builders and model objects, as
    many mailboxes at once as sweeper reads; prints figures as JSON."""
    from msgraph.generated.users.item.mail_folders.item.messages import (  # noqa: F401
        messages_request_builder,
    )

    env = {**os.environ, **json.loads(args.env)}
    settings = settings_for(env, args.concurrency, args.page_size)
    window = window_of(env)

    async def run() -> tuple[int, int]:
        async with gateway_for(settings.sign_in, env) as gateway:
            users = (await gateway.users(include_disabled=False))[: args.sdk_mailboxes]
            policy = Policy.build(await gateway.verified_domains())
            slots = asyncio.Semaphore(args.concurrency)

            async def one(user: User) -> int:
                async with slots:
                    messages = await messages_as_models(gateway, user, window, args.page_size)
                for message in messages:
                    classify(user.upn, message, policy)
                return len(messages)

            return len(users), sum(await asyncio.gather(*(one(u) for u in users)))

    startup_cpu = time.process_time()
    started = time.perf_counter()
    mailboxes, messages = asyncio.run(run())
    figures = {
        "mailboxes": mailboxes,
        "messages": messages,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - startup_cpu,
        "startup_cpu_seconds": startup_cpu,
    }
    print(json.dumps(figures))


async def messages_as_models(
    gateway: GraphGateway, user: User, window: Window, page_size: int
) -> list[dict[str, Any]]:
    """The straightforward way, through the SDK's request builders and model objects.

    Only here, for ``make bench`` to measure against the gateway's raw-JSON pages: it is
    about a hundred times slower per message. The same request as the gateway's (fields,
    window, page size), through the gateway's own sign-in and retries; plain dicts of the
    fields sweeper classifies come back.
    """
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (  # noqa: E501
        MessagesRequestBuilder,
    )

    builder = (
        gateway.sdk_client.users.by_user_id(user.id)
        .mail_folders.by_mail_folder_id("sentitems")
        .messages
    )
    query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
        select=list(MESSAGE_FIELDS),
        filter=f"sentDateTime ge {iso(window.since)} and sentDateTime lt {iso(window.until)}",
        top=page_size,
    )
    page = await builder.get(request_configuration=RequestConfiguration(query_parameters=query))
    first = f"{gateway.graph_url}/users/{user.id}/mailFolders/sentitems/messages"
    paging = Paging(first, gateway.graph_url)  # bounded as every listing
    messages: list[dict[str, Any]] = []
    while page is not None:
        messages += [model_to_dict(m) for m in page.value or []]
        link = paging.follow(page.odata_next_link)
        if link is None:
            break
        page = await builder.with_url(link).get()
    return messages


def model_to_dict(message: Any) -> dict[str, Any]:
    """An SDK ``Message`` as the raw JSON fields the classifier reads."""

    def people(recipients: Any) -> list[dict[str, Any]]:
        return [
            {"emailAddress": {"name": r.email_address.name, "address": r.email_address.address}}
            for r in recipients or []
            if r.email_address is not None
        ]

    sender = message.from_.email_address if message.from_ else None
    return {
        "id": message.id,
        "internetMessageId": message.internet_message_id,
        "conversationId": message.conversation_id,
        "subject": message.subject,
        "sentDateTime": message.sent_date_time.isoformat() if message.sent_date_time else None,
        "from": {"emailAddress": {"address": sender.address if sender else None}},
        "toRecipients": people(message.to_recipients),
        "ccRecipients": people(message.cc_recipients),
        "bccRecipients": people(message.bcc_recipients),
    }


def classifier(args: argparse.Namespace) -> None:
    """Decoding and classifying alone, on one core, from the bytes of pages as the local
    Graph serves them (sweeper's $select) to findings; and, to compare, the way before
    msgspec: each page parsed whole with orjson, then classified message by message."""
    pages, domains = pages_as_served(args.mailboxes, args.messages)
    policy = Policy.build(domains)  # a new policy: its verdicts start empty, as in a run
    gc.collect()  # not the making of the pages: each measurement starts with no garbage
    started = time.process_time()
    findings, messages = 0, 0
    for body in pages:
        page, _ = parse_page(body)
        assert page is not None
        messages += len(page.value)
        findings += len(classify_page("user0@x", page.value, policy).findings)
    seconds = time.process_time() - started

    policy = Policy.build(domains)
    gc.collect()
    started = time.process_time()
    before = 0
    for body in pages:
        for message in orjson.loads(body)["value"]:
            before += classify("user0@x", message, policy) is not None
    before_seconds = time.process_time() - started
    assert before == findings, "the quick path and the full judgement disagree"

    gc.collect()
    started = time.process_time()
    for body in pages:
        orjson.loads(body)
    parse_seconds = time.process_time() - started
    figures = {
        "messages": messages,
        "findings": findings,
        "cpu_seconds": seconds,
        "orjson_cpu_seconds": before_seconds,
        "orjson_parse_cpu_seconds": parse_seconds,
    }
    print(json.dumps(figures))


def pages_as_served(mailboxes: int, messages: int) -> tuple[list[bytes], list[str]]:
    """Each mailbox's mail as one page's bytes, as the local Graph serves it with sweeper's
    $select; and the tenant's domains. The tenant itself is gone when this returns."""
    from sweeper.fakegraph.bulk import BulkTenant
    from sweeper.fakegraph.odata import project

    tenant = BulkTenant(mailboxes, messages)
    fields = list(MESSAGE_FIELDS)
    pages = [
        orjson.dumps({"value": [project(m, fields) for m in tenant.messages_of(u)]})
        for u in tenant.users
    ]
    return pages, [d["id"] for d in tenant.domains]
