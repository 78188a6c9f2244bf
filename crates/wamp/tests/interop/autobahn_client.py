"""Interop check: stock autobahn-python (asyncio) against the s4t-wamp example router.

Usage: python autobahn_client.py ws://127.0.0.1:8181 json|msgpack|default
("default" offers autobahn's own list: cbor, msgpack, ubjson, json.)
Two sessions (as Lightning-rod would: HELLO without authmethods, REGISTER with
match/invoke options, CALL with kwargs) exercise RPC both ways, pub/sub, errors and the
session meta API. Exits 0 when every check passed.
"""
import asyncio
import sys

from autobahn.asyncio.wamp import ApplicationSession
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, RegisterOptions, CallOptions
from autobahn.wamp.serializer import JsonSerializer, MsgPackSerializer
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp.types import ComponentConfig

URL, SERIALIZER = sys.argv[1], sys.argv[2]
checks = []


def check(name, ok):
    checks.append((name, bool(ok)))
    print(("ok   " if ok else "FAIL ") + name, flush=True)


async def open_session(make):
    loop = asyncio.get_event_loop()
    joined = loop.create_future()
    serializers = {"json": [JsonSerializer()], "msgpack": [MsgPackSerializer()]}.get(SERIALIZER)

    def factory():
        session = make(ComponentConfig(realm="s4t"))
        session.joined_future = joined
        return session

    transport_factory = WampWebSocketClientFactory(factory, url=URL, serializers=serializers)
    host, port = URL.split("//")[1].split("/")[0].split(":")
    await loop.create_connection(transport_factory, host, int(port))
    return await asyncio.wait_for(joined, 5)


class Session(ApplicationSession):
    async def onJoin(self, details):
        self.welcome = details
        self.joined_future.set_result(self)


async def main():
    callee = await open_session(Session)
    caller = await open_session(Session)
    check("joined with authrole anonymous", callee.welcome.authrole == "anonymous")
    check("welcome authid is a string", isinstance(callee.welcome.authid, str))

    seen = {}

    def add(a, b, **kwargs):
        return {"sum": a + b, "kwargs": kwargs}

    async def whoami(details=None):
        return {"caller": details.caller, "authid": details.caller_authid,
                "authrole": details.caller_authrole}

    await callee.register(add, "interop.py.add",
                          options=RegisterOptions(match="exact", invoke="single"))
    await callee.register(whoami, "interop.py.whoami",
                          options=RegisterOptions(details_arg="details"))

    events = asyncio.Queue()
    await callee.subscribe(lambda *a, **kw: events.put_nowait((a, kw)), "interop.topic")

    r = await caller.call("interop.py.add", 2, 3, k="v")
    check("python -> python call with kwargs", r == {"sum": 5, "kwargs": {"k": "v"}})

    who = await caller.call("interop.py.whoami")
    check("caller identity disclosed to an autobahn callee",
          who["caller"] == caller._session_id and isinstance(who["authid"], str)
          and who["authrole"] == "anonymous")

    r = await caller.call("interop.rust.echo", 1, "two", x=[3])
    check("python -> rust local session", list(r.results) == [1, "two"] and r.kwresults == {"x": [3]})

    r = await caller.call("interop.rust.call_back", "interop.py.add", 10, 20)
    check("rust local session -> python callee", r["sum"] == 30)

    who = await caller.call("interop.rust.call_back", "interop.py.whoami")
    check("local caller identity", who["authid"] == "example" and who["authrole"] == "cloud")

    await caller.publish("interop.topic", "hello", n=1, options=PublishOptions(acknowledge=True))
    args, kwargs = await asyncio.wait_for(events.get(), 5)
    check("publish/subscribe", args == ("hello",) and kwargs == {"n": 1})

    try:
        await caller.call("interop.nowhere")
        check("no_such_procedure raised", False)
    except ApplicationError as e:
        check("no_such_procedure raised", e.error == "wamp.error.no_such_procedure")

    async def fail():
        raise ApplicationError("interop.error.custom", "bad", code=7)

    await callee.register(fail, "interop.py.fail")
    try:
        await caller.call("interop.py.fail")
        check("callee error forwarded", False)
    except ApplicationError as e:
        check("callee error forwarded",
              e.error == "interop.error.custom" and e.args == ("bad",) and e.kwargs == {"code": 7})

    count = await caller.call("wamp.session.count")
    check("wamp.session.count", count == 3)
    got = await caller.call("wamp.session.get", callee._session_id)
    check("wamp.session.get", got["session"] == callee._session_id)

    try:
        await caller.call("interop.rust.call_back", "interop.nowhere",
                          options=CallOptions(timeout=2))
        check("error through the local session", False)
    except ApplicationError as e:
        check("error through the local session", e.error == "wamp.error.no_such_procedure")

    caller.leave()
    callee.leave()
    await asyncio.sleep(0.3)


asyncio.get_event_loop().run_until_complete(main())
failed = [name for name, ok in checks if not ok]
print("%d passed, %d failed" % (len(checks) - len(failed), len(failed)))
sys.exit(1 if failed else 0)
