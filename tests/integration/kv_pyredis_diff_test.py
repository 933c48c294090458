#!/usr/bin/env python3
"""Differential test of cosmos-kv through a real client library.

Starts a redis-server (no persistence) and cosmos-kv (pool backend in a
fresh directory) on free loopback ports, drives both with the same calls
through python3-redis (Debian's redis-py) and compares what the library
returns: per data type, keyspace and expiry, pipelines, MULTI/EXEC
transactions with WATCH, pub/sub, blocking pops, and RESP3 when the library
supports it (redis-py >= 5 has protocol=3; Debian 12's 4.3.4 does not, and
then kv_redis_diff_test's byte comparison is the RESP3 coverage).

Usage: kv_pyredis_diff_test.py COSMOS_KV_BINARY
Exit status: 0 all equal, 1 a difference or failure, 77 skipped (no
python3-redis or no redis-server), as ctest's SKIP_RETURN_CODE expects.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77

try:
    import redis
except ImportError:
    print("skipped: python3-redis is not installed for " + sys.executable +
          " (scripts/setup.sh installs Debian's python3-redis)")
    sys.exit(SKIP)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, what):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port}")


class Servers:
    """redis-server and cosmos-kv, started and stopped together."""

    def __init__(self, kv_binary):
        self.dir = tempfile.mkdtemp(prefix="cosmos_kv_pyredis_")
        self.redis_port = free_port()
        self.kv_port = free_port()
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.kv = subprocess.Popen(
            [kv_binary, "--port", str(self.kv_port), "--bind", "127.0.0.1",
             "--pool", os.path.join(self.dir, "kv.pool"), "--pool-size", "64mb",
             "--log-level", "warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.redis_port, self.redis, "redis-server")
        wait_for_port(self.kv_port, self.kv, "cosmos-kv")

    def stop(self):
        for p in (self.kv, self.redis):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Diff:
    """Runs the same calls on a redis-server client and a cosmos-kv client."""

    def __init__(self, servers, **kwargs):
        self.servers = servers
        self.kwargs = kwargs
        self.r = self.client("redis")
        self.k = self.client("kv")
        self.failures = []
        self.checks = 0

    def client(self, which):
        port = self.servers.redis_port if which == "redis" else self.servers.kv_port
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=60, **self.kwargs)

    @staticmethod
    def outcome(fn, client):
        try:
            return ("ok", fn(client))
        except redis.exceptions.RedisError as e:  # compared by class and message
            return ("error", type(e).__name__, str(e))

    def check(self, what, got, want):
        self.checks += 1
        if got != want:
            self.failures.append(f"{what}:\n    redis-server: {want!r}\n    cosmos-kv:    {got!r}")

    def same(self, what, fn, normalize=lambda v: v):
        """Calls fn(client) on both servers; results (or errors) must be equal."""
        want = self.outcome(fn, self.r)
        got = self.outcome(fn, self.k)
        if want[0] == "ok" and got[0] == "ok":
            want, got = ("ok", normalize(want[1])), ("ok", normalize(got[1]))
        self.check(what, got, want)


def sorted_pairs(v):
    return sorted(v) if isinstance(v, list) else v


def data_types(d):
    s = d.same
    s("flushall", lambda c: c.flushall())
    # Strings and counters.
    s("set", lambda c: c.set("s", "v"))
    s("get", lambda c: c.get("s"))
    s("get missing", lambda c: c.get("nokey"))
    s("set nx", lambda c: c.set("s", "w", nx=True))
    s("set xx get", lambda c: c.set("s", "w", xx=True, get=True))
    s("append", lambda c: c.append("s", "xyz"))
    s("getrange", lambda c: c.getrange("s", 1, -2))
    s("setrange", lambda c: c.setrange("s", 2, "AB"))
    s("strlen", lambda c: c.strlen("s"))
    s("incr", lambda c: c.incr("n"))
    s("incrby", lambda c: c.incrby("n", 41))
    s("decr", lambda c: c.decr("n"))
    s("incrbyfloat", lambda c: c.incrbyfloat("f", 1.25))
    s("incr wrongtype", lambda c: c.incr("s"))
    s("mset", lambda c: c.mset({"a": "1", "b": "2"}))
    s("mget", lambda c: c.mget(["a", "nokey", "b"]))
    s("msetnx", lambda c: c.msetnx({"a": "9", "c": "3"}))
    s("getdel", lambda c: c.getdel("c"))
    s("setbit", lambda c: c.setbit("bits", 7, 1))
    s("bitcount", lambda c: c.bitcount("bits"))
    s("getbit", lambda c: c.getbit("bits", 7))
    # Hashes.
    s("hset mapping", lambda c: c.hset("h", mapping={"f1": "v1", "f2": "v2", "n": "5"}))
    s("hget", lambda c: c.hget("h", "f1"))
    s("hgetall", lambda c: c.hgetall("h"))
    s("hmget", lambda c: c.hmget("h", ["f1", "nope", "f2"]))
    s("hincrby", lambda c: c.hincrby("h", "n", 10))
    s("hincrbyfloat", lambda c: c.hincrbyfloat("h", "n", 0.5))
    s("hdel", lambda c: c.hdel("h", "f2", "nope"))
    s("hkeys", lambda c: c.hkeys("h"))
    s("hvals", lambda c: c.hvals("h"))
    s("hlen", lambda c: c.hlen("h"))
    s("hexists", lambda c: c.hexists("h", "f1"))
    s("hsetnx", lambda c: c.hsetnx("h", "f1", "x"))
    s("hscan", lambda c: c.hscan("h", 0))
    s("hget wrongtype", lambda c: c.hget("s", "f"))
    # Lists.
    s("rpush", lambda c: c.rpush("l", "a", "b", "c", "d"))
    s("lpush", lambda c: c.lpush("l", "z"))
    s("lrange", lambda c: c.lrange("l", 0, -1))
    s("lindex", lambda c: c.lindex("l", 2))
    s("lpop", lambda c: c.lpop("l"))
    s("rpop count", lambda c: c.rpop("l", 2))
    s("linsert", lambda c: c.linsert("l", "before", "b", "x"))
    s("lrem", lambda c: c.lrem("l", 0, "x"))
    s("lset", lambda c: c.lset("l", 0, "A"))
    s("ltrim", lambda c: c.ltrim("l", 0, 0))
    s("lmove", lambda c: c.lmove("l", "l2", "LEFT", "RIGHT"))
    s("llen", lambda c: c.llen("l2"))
    s("lpos", lambda c: c.lpos("l2", "A"))
    s("lpop missing", lambda c: c.lpop("nokey"))
    s("rpush wrongtype", lambda c: c.rpush("s", "x"))
    if hasattr(redis.Redis, "lmpop"):
        s("rpush for lmpop", lambda c: c.rpush("ml", "1", "2", "3"))
        s("lmpop", lambda c: c.lmpop(2, "nokey", "ml", direction="RIGHT", count=2))
    else:
        s("rpush for lmpop", lambda c: c.rpush("ml", "1", "2", "3"))
        s("lmpop", lambda c: c.execute_command("LMPOP", 2, "nokey", "ml", "RIGHT", "COUNT", 2))
    # Sets (the library returns Python sets: order does not matter).
    s("sadd", lambda c: c.sadd("set", "x", "y", "z"))
    s("sadd 2", lambda c: c.sadd("set2", "y", "q"))
    s("smembers", lambda c: c.smembers("set"))
    s("sismember", lambda c: c.sismember("set", "x"))
    s("smismember", lambda c: c.smismember("set", ["x", "nope"]))
    s("sinter", lambda c: c.sinter("set", "set2"))
    s("sunion", lambda c: c.sunion("set", "set2"))
    s("sdiff", lambda c: c.sdiff("set", "set2"))
    s("sinterstore", lambda c: c.sinterstore("set3", ["set", "set2"]))
    s("srem", lambda c: c.srem("set", "x"))
    s("scard", lambda c: c.scard("set"))
    s("smove", lambda c: c.smove("set", "set2", "z"))
    s("spop count", lambda c: len(c.spop("set2", 2)))
    s("sscan", lambda c: c.sscan("set3", 0))
    # Sorted sets (scores come back as floats).
    s("zadd", lambda c: c.zadd("z", {"a": 1, "b": 2.5, "c": 3}))
    s("zadd incr", lambda c: c.zadd("z", {"a": 1}, incr=True))
    s("zadd nx", lambda c: c.zadd("z", {"a": 9, "d": 4}, nx=True))
    s("zscore", lambda c: c.zscore("z", "b"))
    s("zincrby", lambda c: c.zincrby("z", 0.25, "b"))
    s("zrange withscores", lambda c: c.zrange("z", 0, -1, withscores=True))
    s("zrevrange", lambda c: c.zrevrange("z", 0, 1, withscores=True))
    s("zrangebyscore", lambda c: c.zrangebyscore("z", 2, "+inf", withscores=True))
    s("zrange byscore limit", lambda c: c.zrange("z", "-inf", "+inf", byscore=True, offset=1,
                                                 num=2))
    s("zrank", lambda c: c.zrank("z", "c"))
    s("zcard", lambda c: c.zcard("z"))
    s("zcount", lambda c: c.zcount("z", 2, 3))
    s("zmscore", lambda c: c.zmscore("z", ["a", "nope"]))
    s("zpopmin", lambda c: c.zpopmin("z"))
    s("zpopmax count", lambda c: c.zpopmax("z", 2))
    s("zunionstore", lambda c: c.zunionstore("zu", {"z": 2, "set3": 1}))
    s("zrange zu", lambda c: c.zrange("zu", 0, -1, withscores=True))
    s("zrem", lambda c: c.zrem("zu", "y"))
    s("zscan", lambda c: c.zscan("zu", 0))
    s("zadd wrongtype", lambda c: c.zadd("s", {"m": 1}))
    s("zmpop", lambda c: c.execute_command("ZMPOP", 1, "zu", "MIN", "COUNT", 5))
    # Keyspace and expiry.
    s("type", lambda c: [c.type(k) for k in ("s", "h", "l2", "set3", "z", "nokey")])
    s("exists", lambda c: c.exists("s", "h", "nokey"))
    s("rename", lambda c: c.rename("h", "h2"))
    s("renamenx", lambda c: c.renamenx("h2", "s"))
    s("copy", lambda c: c.copy("h2", "h3"))
    s("hgetall copy", lambda c: c.hgetall("h3"))
    s("expire", lambda c: c.expire("h3", 100))
    s("ttl", lambda c: 90 <= c.ttl("h3") <= 100)
    s("persist", lambda c: c.persist("h3"))
    s("ttl after persist", lambda c: c.ttl("h3"))
    s("set ex", lambda c: c.set("e", "v", ex=100))
    s("getex persist", lambda c: c.getex("e", persist=True))
    s("ttl after getex", lambda c: c.ttl("e"))
    s("expireat past", lambda c: c.expireat("e", 1))
    s("get expired", lambda c: c.get("e"))
    s("keys", lambda c: sorted(c.keys("*")))
    s("dbsize", lambda c: c.dbsize())
    s("delete", lambda c: c.delete("s", "n", "nokey"))
    s("unknown command", lambda c: c.execute_command("NOSUCHCOMMAND", "a"))
    s("wrong arity", lambda c: c.execute_command("GET"))


def active_expiry(d):
    """A key with a short TTL disappears without being read (active expiry)."""
    for c in (d.r, d.k):
        c.flushall()
        c.set("short", "v", px=50)
        c.set("keep", "v")
    for name, c in (("redis-server", d.r), ("cosmos-kv", d.k)):
        deadline = time.monotonic() + 30  # a hang guard: the outcome is compared, not the time
        while c.dbsize() != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        d.check(f"active expiry on {name}: keys left", sorted(c.keys("*")), [b"keep"])


def pipelines(d):
    def run(c):
        p = c.pipeline(transaction=False)
        p.set("p1", "1").incr("p1").get("p1").hset("ph", "f", "v").hgetall("ph")
        p.rpush("pl", "a", "b").lrange("pl", 0, -1).incr("ph").zadd("pz", {"m": 1.5})
        p.zrange("pz", 0, -1, withscores=True).get("nokey").execute_command("NOSUCH")
        return [repr(x) if isinstance(x, Exception) else x
                for x in p.execute(raise_on_error=False)]
    d.same("pipeline of 13 commands", run)

    def big(c):
        p = c.pipeline(transaction=False)
        for i in range(500):
            p.rpush("big", i)
        p.llen("big")
        return p.execute()[-1]
    d.same("pipeline of 501 commands", big)


def transactions(d):
    def multi(c):
        p = c.pipeline(transaction=True)
        p.set("t1", "1").incr("t1").hset("th", "f", "v").lpush("t1", "x").get("t1")
        return [repr(x) if isinstance(x, Exception) else x
                for x in p.execute(raise_on_error=False)]
    d.same("MULTI/EXEC with a failing command inside", multi)

    def queue_error(c):
        p = c.pipeline(transaction=True)
        p.set("t2", "1").execute_command("GET")  # wrong arity: EXECABORT
        return p.execute()
    d.same("MULTI/EXEC aborted at queue time", queue_error)
    d.same("nothing of the aborted EXEC applied", lambda c: c.get("t2"))

    for name, c, other in (("redis-server", d.r, d.client("redis")),
                           ("cosmos-kv", d.k, d.client("kv"))):
        c.set("w", "0")
        # WATCH, another client writes, EXEC fails: the library's WatchError.
        p = c.pipeline(transaction=True)
        p.watch("w")
        other.set("w", "changed")
        p.multi()
        p.incr("w")
        try:
            p.execute()
            result = "executed"
        except redis.exceptions.WatchError:
            result = "WatchError"
        except redis.exceptions.RedisError as e:
            result = f"{type(e).__name__}: {e}"
        d.check(f"WATCH on {name}", result, "WatchError")
        d.check(f"WATCH on {name}: value", c.get("w"), b"changed")

        def incr(pipe):
            value = int(pipe.get("w2") or 0)
            pipe.multi()
            pipe.set("w2", value + 1)
        for _ in range(3):
            c.transaction(incr, "w2")
        d.check(f"transaction() helper on {name}", c.get("w2"), b"3")
        other.close()


def pubsub(d):
    def collect(p, n):
        got = []
        deadline = time.monotonic() + 30  # a hang guard only
        while len(got) < n and time.monotonic() < deadline:
            m = p.get_message(timeout=1)
            if m is not None:
                got.append(m)
        return got

    results = {}
    for name, which in (("redis", "redis"), ("kv", "kv")):
        c = d.client(which)
        pub = d.client(which)
        p = c.pubsub()
        p.subscribe("ch1", "ch2")
        p.psubscribe("news.*")
        confirmations = collect(p, 3)
        receivers = [pub.publish("ch1", "hello"), pub.publish("news.x", "big"),
                     pub.publish("nobody", "m")]
        messages = collect(p, 2)
        numsub = pub.pubsub_numsub("ch1", "ch2", "zz")
        numpat = pub.pubsub_numpat()
        p.unsubscribe("ch1")
        p.punsubscribe()
        more = collect(p, 2)
        pub.publish("ch2", "still")
        last = collect(p, 1)
        p.close()
        results[name] = (confirmations, receivers, messages, numsub, numpat, more, last)
        pub.close()
        c.close()
    d.check("pub/sub through the library", results["kv"], results["redis"])


def blocking(d):
    d.same("blpop timeout", lambda c: c.blpop(["nokey"], timeout=0.05))
    d.same("bzpopmin timeout", lambda c: c.bzpopmin(["nokey"], timeout=0.05))
    d.same("brpop ready", lambda c: (c.rpush("bl", "a", "b"), c.brpop(["nokey", "bl"], 1)))
    results = {}
    for which in ("redis", "kv"):
        waiter, pusher = d.client(which), d.client(which)
        box = {}
        t = threading.Thread(target=lambda: box.setdefault("r", waiter.blpop(["q1", "q2"], 0)))
        t.start()
        # Push once the waiter is parked (INFO says so), so it is served by the push.
        deadline = time.monotonic() + 30
        while (pusher.info("clients")["blocked_clients"] != 1 and
               time.monotonic() < deadline):
            time.sleep(0.01)
        pushed = pusher.rpush("q2", "item")
        t.join(60)
        results[which] = (pushed, box.get("r"), pusher.llen("q2"))
        waiter.close()
        pusher.close()
    d.check("blpop served by another client's push", results["kv"], results["redis"])


def resp3(servers):
    """RESP3 through the library, if this redis-py speaks it (protocol=3)."""
    try:
        d = Diff(servers, protocol=3)
    except TypeError:
        print(f"note: redis-py {redis.__version__} has no protocol=3 option: RESP3 is not "
              "driven through the library here (kv_redis_diff_test compares RESP3 bytes)")
        return None
    data_types(d)
    pipelines(d)
    return d


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    if shutil.which("redis-server") is None:
        print("skipped: redis-server is not installed (scripts/setup.sh installs it)")
        return SKIP
    print(f"python3-redis {redis.__version__} ({sys.executable})")
    servers = Servers(sys.argv[1])
    try:
        runs = []
        d = Diff(servers)
        for part in (data_types, active_expiry, pipelines, transactions, pubsub, blocking):
            part(d)
        runs.append(("RESP2", d))
        d3 = resp3(servers)
        if d3 is not None:
            runs.append(("RESP3", d3))
        failed = False
        for label, run in runs:
            print(f"{label}: {run.checks} comparisons, {len(run.failures)} differences")
            for f in run.failures:
                print("DIFFERENCE " + f)
            failed = failed or bool(run.failures)
        if servers.kv.poll() is not None:
            print(f"cosmos-kv exited with {servers.kv.returncode} during the test")
            failed = True
        return 1 if failed else 0
    finally:
        servers.stop()


if __name__ == "__main__":
    sys.exit(main())
