#!/usr/bin/env python3
"""Create boards through the s4t REST API until it holds N: populate.py URL TOKEN N.
Prints `sample_board <uuid> <name>` last. Standard library only."""
import http.client, json, sys, urllib.parse

url, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
u = urllib.parse.urlparse(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
h = {"X-Auth-Token": token, "Content-Type": "application/json"}


def call(method, path, body=None):
    conn.request(method, path, json.dumps(body) if body is not None else None, h)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit("%s %s -> %d %s" % (method, path, r.status, data[:200]))
    return json.loads(data) if data else None


have = len(call("GET", "/v1/boards?limit=1000")["boards"])
for i in range(have, n):
    call("POST", "/v1/boards", {"name": "bench-board-%05d" % i, "code": "BENCH%05d" % i, "type": "server",
                                "location": [{"latitude": "38.1", "longitude": "15.5", "altitude": "1"}]})
boards = call("GET", "/v1/boards?limit=1000")["boards"]
print("boards: %d" % len(boards))
print("sample_board %s %s" % (boards[len(boards) // 2]["uuid"], boards[len(boards) // 2]["name"]))
