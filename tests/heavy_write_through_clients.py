#!/usr/bin/python3
"""Real Redis clients (Debian's python3-redis, redis.asyncio) for the write-through and
keep-alive tests (tests/heavy_write_through_test.cpp drives it).

    heavy_write_through_clients.py PORT subscribers N    N clients SUBSCRIBE news
    heavy_write_through_clients.py PORT pingers N        N plain clients (one SET each)

It prints "ready clients=N" once every client is set up (the test then waits for them to be
parked), then reads commands on stdin:

    publish M      (subscribers) publish M messages on news from a client of its own; each
                   PUBLISH must count N; every subscriber must get all M, in order;
                   prints "published ok|FAIL ..."
    ping K         (pingers) every client sends K PINGs, one after the other; every answer
                   must be True; prints "pinged ok|FAIL ..."
    stop           closes every client and exits

Each report is followed by a line "done TAG", so a reader knows it is whole.
"""
import asyncio
import sys

import redis.asyncio as aioredis

HOST = "127.0.0.1"
TIMEOUT_S = 30


async def read_messages(pubsub, m, errors):
    got = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_S
    while len(got) < m and loop.time() < deadline:
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if msg is not None and msg["type"] == "message":
            got.append(msg["data"].decode())
    want = ["m%d" % i for i in range(m)]
    if got != want:
        errors.append("got %r" % got[:8])


async def main():
    port, mode, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    clients = [aioredis.Redis(host=HOST, port=port, single_connection_client=True) for _ in range(n)]
    subs = []
    if mode == "subscribers":
        for c in clients:
            p = c.pubsub()
            await p.subscribe("news")
            msg = await p.get_message(timeout=5.0)  # the subscribe confirmation
            if msg is None or msg["type"] != "subscribe":
                print("setup FAIL no subscribe confirmation", flush=True)
                return
            subs.append(p)
    else:
        for i, c in enumerate(clients):
            await c.set("k%d" % i, "v")
    print("ready clients=%d" % n, flush=True)

    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().split()
        if not line or line[0] == "stop":
            break
        errors = []
        if line[0] == "publish":
            m = int(line[1])
            publisher = aioredis.Redis(host=HOST, port=port, single_connection_client=True)
            counts = [await publisher.publish("news", "m%d" % i) for i in range(m)]
            await publisher.aclose() if hasattr(publisher, "aclose") else await publisher.close()
            if any(c != n for c in counts):
                errors.append("publish counts %r" % counts)
            await asyncio.gather(*(read_messages(p, m, errors) for p in subs))
            print("published %s errors=%d first=%s" % ("ok" if not errors else "FAIL", len(errors),
                                                      (errors or ["-"])[0].replace(" ", "_")), flush=True)
            print("done publish", flush=True)
        elif line[0] == "ping":
            k = int(line[1])

            async def pings(c):
                for _ in range(k):
                    if await c.ping() is not True:
                        errors.append("a PING was not answered PONG")

            await asyncio.gather(*(pings(c) for c in clients))
            print("pinged %s errors=%d" % ("ok" if not errors else "FAIL", len(errors)), flush=True)
            print("done ping", flush=True)
    print("stopped", flush=True)


asyncio.run(main())
