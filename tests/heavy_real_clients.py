#!/usr/bin/python3
"""Real Redis clients (Debian's python3-redis, redis.asyncio) against heavy_server, for the
graceful-restart tests (tests/heavy_restart_real_clients_test.cpp drives it).

    heavy_real_clients.py PORT load     ~350 clients: 100 busy (a request every 10 ms), 100
                                        named with a db, 100 subscribers (half on a channel,
                                        half on a pattern), 50 pipelining, one publisher
    heavy_real_clients.py PORT light    50 sessions, a subscriber, a new client every 20 ms

It prints "ready" once every client is connected and set up, then reads commands on stdin:

Each report is followed by a line "done TAG" (or "done result"), so a reader knows it is whole.

    check TAG   publish 5 messages tagged TAG; wait until every subscriber has all of them;
                check every named client's name and db; prints "checked TAG ok ..." or
                "checked TAG FAIL <why>"
    stop        stop every loop; prints "result k=v ..." and exits

Client-side reconnection is off in effect: every connection is counted when it is made
(CountingConnection.on_connect), so a client that lost its connection and made a new one is
a drop, whatever the library did about it. Every request's answer is checked (INCR counts
exactly), and every exception counts as a failure.
"""
import asyncio
import sys

import redis.asyncio as aioredis

STATS = {"connects": 0, "arrival_connects": 0, "errors": 0, "busy_requests": 0, "pipelined_requests": 0,
         "arrivals": 0, "arrivals_failed": 0}
ERRORS = []  # the first few, for the report
HOST = "127.0.0.1"
MESSAGES_PER_CHECK = 5
CHECK_TIMEOUT_S = 20


def fail(what):
    STATS["errors"] += 1
    if len(ERRORS) < 5:
        ERRORS.append(what)


class CountingConnection(aioredis.Connection):
    """A redis-py connection that counts every TCP connection it makes (and remakes)."""

    async def on_connect(self):
        STATS["connects"] += 1
        await super().on_connect()


class ArrivalConnection(aioredis.Connection):
    """The short-lived clients' connections, counted apart."""

    async def on_connect(self):
        STATS["arrival_connects"] += 1
        await super().on_connect()


def client(port, connection_class=CountingConnection, **kwargs):
    pool = aioredis.ConnectionPool(connection_class=connection_class, host=HOST, port=port,
                                   max_connections=1, **kwargs)
    return aioredis.Redis(connection_pool=pool, single_connection_client=True)


async def busy_loop(r, key, stop):
    """A request every 10 ms; INCR must count 1, 2, 3... (every request answered once)."""
    expected = 0
    while not stop.is_set():
        try:
            value = await r.incr(key)
            expected += 1
            STATS["busy_requests"] += 1
            if value != expected:
                fail(f"{key}: INCR answered {value}, expected {expected}")
                expected = value
        except Exception as e:  # noqa: BLE001 - every failure counts
            fail(f"{key}: {e!r}")
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.01)


async def pipeline_loop(r, key, stop):
    """Ten INCRs per round trip, every 10 ms."""
    expected = 0
    while not stop.is_set():
        try:
            pipe = r.pipeline(transaction=False)
            for _ in range(10):
                pipe.incr(key)
            values = await pipe.execute()
            want = list(range(expected + 1, expected + 11))
            if values != want:
                fail(f"{key}: pipeline answered {values[:3]}..., expected {want[:3]}...")
            expected = values[-1] if values else expected
            STATS["pipelined_requests"] += 10
        except Exception as e:  # noqa: BLE001
            fail(f"{key}: {e!r}")
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.01)


class Subscriber:
    def __init__(self, port, index, pattern):
        self.redis = client(port)
        self.pubsub = self.redis.pubsub()
        self.index = index
        self.pattern = pattern
        self.received = []

    async def start(self):
        if self.pattern:
            await self.pubsub.psubscribe("ne*")
        else:
            await self.pubsub.subscribe("news")
        # The confirmation, so the subscription is in place before "ready".
        while True:
            m = await self.pubsub.get_message(timeout=5)
            if m is None:
                raise RuntimeError(f"subscriber {self.index}: no subscription confirmation")
            if m["type"] in ("subscribe", "psubscribe"):
                return

    async def run(self, stop):
        while not stop.is_set():
            try:
                m = await self.pubsub.get_message(timeout=0.2)
            except Exception as e:  # noqa: BLE001
                fail(f"subscriber {self.index}: {e!r}")
                await asyncio.sleep(0.1)
                continue
            if m is None:
                continue
            want = "pmessage" if self.pattern else "message"
            if m["type"] != want:
                fail(f"subscriber {self.index}: got a {m['type']} {m!r}")
                continue
            self.received.append(m["data"].decode())


async def arrivals_loop(port, stop):
    """A new client every 20 ms: connect, PING, QUIT. Each must be answered."""
    while not stop.is_set():
        r = client(port, connection_class=ArrivalConnection)
        try:
            if await asyncio.wait_for(r.ping(), 10) is not True:
                raise RuntimeError("PING not answered PONG")
            STATS["arrivals"] += 1
        except Exception as e:  # noqa: BLE001
            STATS["arrivals_failed"] += 1
            fail(f"arrival: {e!r}")
        finally:
            try:
                await r.close()
                await r.connection_pool.disconnect()
            except Exception:  # noqa: BLE001
                pass
        await asyncio.sleep(0.02)


async def check(tag, publisher, subscribers, named):
    """Publish, then wait (bounded) until every subscriber has every message; names and dbs."""
    expected = [f"{tag}-{i}" for i in range(MESSAGES_PER_CHECK)]
    for text in expected:
        receivers = await publisher.publish("news", text)
        if receivers != len(subscribers):
            return f"PUBLISH {text} reached {receivers} receivers, not {len(subscribers)}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CHECK_TIMEOUT_S
    while True:
        missing = [s.index for s in subscribers if not set(expected) <= set(s.received)]
        if not missing:
            break
        if loop.time() > deadline:
            return f"{len(missing)} subscriber(s) lack messages of {tag}, e.g. {missing[:5]}"
        await asyncio.sleep(0.05)
    for i, r in named:
        name = await r.client_getname()
        if name != f"named-{i}":
            return f"named client {i}: CLIENT GETNAME answered {name!r}"
        value = await r.get(f"db-key-{i}")
        if value != f"in-db-{i % 16}".encode():
            return f"named client {i}: its key in db {i % 16} reads {value!r}"
    return None


async def main(port, mode):
    stop = asyncio.Event()
    tasks = []
    load = mode == "load"
    subscribers = [Subscriber(port, i, pattern=load and i % 2 == 1) for i in range(100 if load else 1)]
    for s in subscribers:
        await s.start()
    named = []
    for i in range(100 if load else 50):
        r = client(port, db=i % 16, client_name=f"named-{i}")
        await r.set(f"db-key-{i}", f"in-db-{i % 16}")
        named.append((i, r))
    publisher = client(port)
    await publisher.ping()
    busy = [client(port) for _ in range(100 if load else 0)]
    pipelining = [client(port) for _ in range(50 if load else 0)]
    for i, r in enumerate(busy):
        tasks.append(asyncio.create_task(busy_loop(r, f"busy-{i}", stop)))
    for i, r in enumerate(pipelining):
        tasks.append(asyncio.create_task(pipeline_loop(r, f"pipe-{i}", stop)))
    for s in subscribers:
        tasks.append(asyncio.create_task(s.run(stop)))
    if not load:
        tasks.append(asyncio.create_task(arrivals_loop(port, stop)))
    # Every long-lived client has made its one connection by now (the loops' first requests
    # included), so any further connect is a reconnect.
    await asyncio.sleep(0.1)
    clients = len(subscribers) + len(named) + 1 + len(busy) + len(pipelining)
    print(f"ready clients={clients}", flush=True)

    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if not line or line == "stop":
            break
        verb, _, tag = line.partition(" ")
        if verb == "check":
            why = await check(tag, publisher, subscribers, named)
            status = "ok" if why is None else "FAIL " + why
            print(f"checked {tag} {status} errors={STATS['errors']} connects={STATS['connects']}", flush=True)
            print(f"done {tag}", flush=True)
    stop.set()
    await asyncio.gather(*tasks)
    reconnects = STATS["connects"] - clients
    fields = dict(STATS, clients=clients, reconnects=reconnects)
    print("result " + " ".join(f"{k}={v}" for k, v in fields.items()), flush=True)
    for e in ERRORS:
        print("error " + e, flush=True)
    print("done result", flush=True)
    for s in subscribers:
        await s.pubsub.close()
        await s.redis.close()
    for r in [r for _, r in named] + [publisher] + busy + pipelining:
        await r.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
