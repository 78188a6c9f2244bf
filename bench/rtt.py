#!/usr/bin/env python3
"""Client side of bench/rtt.sh (Python 3 standard library only).

    rtt.py create API NAME CODE             POST /v1/boards (201 expected)
    rtt.py wait API NAME STATUS TIMEOUT_S   poll GET /v1/boards/NAME every $POLL_MS (default 25) ms
                                            until its status is STATUS; print the seconds since $T0
                                            (epoch seconds; default: now) or "timeout <last status>"
    rtt.py action API NAME ACTION           one board action; print the HTTP status and the body
    rtt.py plugin API NAME PLUGIN FILE [EXTRA]  create callable plugin PLUGIN from FILE (with the
                                            JSON object EXTRA as its extra) and inject it into NAME
    rtt.py load API NAME LABEL SEQ CONC N   DeviceEcho round trips: SEQ sequential calls, then N calls
                                            from CONC threads; after 20 warm-up calls. One line per phase:
                                            "RESULT LABEL c=1 n=.. ok=.. p50_ms=.. p99_ms=.. mean_ms=.. rps=.."
                                            With $RTT_PLUGIN set, PluginCall of that (echo) plugin
                                            instead of DeviceEcho.

API is the root URL (http://127.0.0.1:PORT). Request headers come from $RTT_HEADERS, "Name: value"
pairs separated by "|" (X-Auth-Token for s4t, X-Roles for the stock API). Connections are kept alive
per thread when the server allows it (the stock API under uWSGI closes each one).
"""
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def headers():
    h = {"Content-Type": "application/json", "Accept": "application/json"}
    for pair in filter(None, os.environ.get("RTT_HEADERS", "").split("|")):
        k, v = pair.split(":", 1)
        h[k.strip()] = v.strip()
    return h


class Client:
    """One HTTP/1.1 connection, reopened whenever the server closed it."""

    def __init__(self, api):
        u = urllib.parse.urlsplit(api)
        self.host, self.port = u.hostname, u.port
        self.h = headers()
        self.conn = None

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                self.conn.request(method, path, body=data, headers=self.h)
                r = self.conn.getresponse()
                out = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, out
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # a kept-alive connection the server had closed: retry once on a new one
                self.conn.close()
                self.conn = None
                if attempt:
                    raise


def pct(sorted_xs, p):
    """Nearest-rank percentile of a sorted list."""
    if not sorted_xs:
        return float("nan")
    k = max(0, min(len(sorted_xs) - 1, int(round(p / 100.0 * len(sorted_xs) + 0.5)) - 1))
    return sorted_xs[k]


def create(api, name, code):
    st, out = Client(api).request("POST", "/v1/boards", {
        "name": name, "code": code, "type": "server",
        "location": [{"latitude": "1", "longitude": "2", "altitude": "3"}]})
    if st != 201:
        sys.exit("board create %s: HTTP %d %s" % (name, st, out[:300]))


def wait(api, name, want, timeout):
    t0 = float(os.environ.get("T0") or time.time())
    poll = float(os.environ.get("POLL_MS", "25")) / 1000.0
    c = Client(api)
    last = None
    while time.time() - t0 < timeout:
        try:
            st, out = c.request("GET", "/v1/boards/%s" % name)
            last = json.loads(out).get("status") if st == 200 else "HTTP %d" % st
            if last == want:
                print("%.3f" % (time.time() - t0))
                return 0
        except Exception as e:  # the API may be busy; keep polling
            last = repr(e)
        time.sleep(poll)
    print("timeout %s" % last)
    return 1


def plugin(api, name, plugin_name, path, extra=None):
    c = Client(api)
    body = {"name": plugin_name, "code": open(path, encoding="utf-8").read(), "callable": True}
    if extra:
        body["extra"] = json.loads(extra)
    st, out = c.request("POST", "/v1/plugins", body)
    if st != 201:
        sys.exit("plugin create %s: HTTP %d %s" % (plugin_name, st, out[:300]))
    st, out = c.request("PUT", "/v1/boards/%s/plugins" % name, {"plugin": plugin_name, "onboot": False})
    if st != 200:
        sys.exit("plugin inject %s into %s: HTTP %d %s" % (plugin_name, name, st, out[:300]))


def echo(c, name, i):
    """One round trip: DeviceEcho, or PluginCall of the echo plugin $RTT_PLUGIN."""
    say = "rtt-%d" % i
    plugin_name = os.environ.get("RTT_PLUGIN")
    if plugin_name:
        path = "/v1/boards/%s/plugins/%s" % (name, plugin_name)
        body = {"action": "PluginCall", "parameters": {"say": say}}
    else:
        path = "/v1/boards/%s/action" % name
        body = {"action": "DeviceEcho", "parameters": {"say": say}}
    t = time.perf_counter()
    st, out = c.request("POST", path, body)
    dt = time.perf_counter() - t
    ok = st == 200
    if ok:
        try:
            got = json.loads(out)
            if plugin_name:
                # the Python echo answers "echo: {'say': ...}", the WASM one {"say": ...}
                ok = say in json.dumps(got)
            else:
                ok = isinstance(got, str) and got.startswith(say + " @ ")
        except ValueError:
            ok = False
    return dt, ok, st, out


def phase(api, name, label, conc, n):
    lat, errors, lock = [], [], threading.Lock()
    counter = iter(range(n))

    def worker():
        c = Client(api)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            dt, ok, st, out = echo(c, name, i)
            with lock:
                if ok:
                    lat.append(dt)
                else:
                    errors.append((st, out[:200]))

    t = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(conc)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t
    lat.sort()
    ms = [x * 1000 for x in lat]
    print("RESULT %s c=%d n=%d ok=%d p50_ms=%.2f p99_ms=%.2f mean_ms=%.2f rps=%.1f" % (
        label, conc, n, len(lat), pct(ms, 50), pct(ms, 99), sum(ms) / max(1, len(ms)), len(lat) / wall))
    for st, out in errors[:3]:
        print("  error: HTTP %s %r" % (st, out))
    sys.stdout.flush()


def load(api, name, label, seq, conc, n):
    c = Client(api)
    for i in range(20):
        dt, ok, st, out = echo(c, name, i)
        if not ok:
            sys.exit("warm-up call on %s failed: HTTP %s %r" % (name, st, out[:300]))
    phase(api, name, label, 1, seq)
    phase(api, name, label, conc, n)


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "create" and len(argv) == 5:
        create(argv[2], argv[3], argv[4])
    elif cmd == "wait" and len(argv) == 6:
        return wait(argv[2], argv[3], argv[4], float(argv[5]))
    elif cmd == "action" and len(argv) == 5:
        st, out = Client(argv[2]).request("POST", "/v1/boards/%s/action" % argv[3],
                                          {"action": argv[4], "parameters": {"say": "hello"}})
        print("HTTP %d %s" % (st, out.decode(errors="replace")))
        return 0 if st == 200 else 1
    elif cmd == "plugin" and len(argv) in (6, 7):
        plugin(*argv[2:])
    elif cmd == "load" and len(argv) == 8:
        load(argv[2], argv[3], argv[4], int(argv[5]), int(argv[6]), int(argv[7]))
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
