#!/usr/bin/env python3
"""Make the stock IoTronic DB (started by start.sh) hold exactly N boards, with plain SQL.

    populate.py N [--agent HOST] [--offline]

The conductor is not running, so POST /v1/boards cannot be used. Rows are written directly with the
`mariadb` client over TCP (127.0.0.1:$STOCK_DB_PORT, user iotronic/iotronic), in multi-row INSERTs.

Each new board looks like one that was created, registered and connected through the real stack:
status online, agent set, lr_version 0.5.0, connectivity filled, project/owner/fleet NULL (so
noauth lists find them), the `config` JSON the conductor stores at creation, one `locations` row and
one valid `sessions` row. The `wampagents` row for the agent (online=1, ragent=1, wsurl
ws://127.0.0.1:8181/) is created or refreshed. With --offline: status offline, no session row.

If the DB holds more than N boards, the newest ones are deleted (with their locations and sessions).
The last line printed is `sample_board <uuid> <name>` (the first board), for GET /v1/boards/{uuid|name}.
Python 3 standard library only.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import uuid

WSURL = "ws://127.0.0.1:8181/"
REALM = "s4t"
BATCH = 500


def mariadb(sql, fetch=False):
    """Run SQL with the mariadb client; return rows (lists of str) when fetch."""
    port = os.environ.get("STOCK_DB_PORT", "3307")
    cli = "mariadb"
    if subprocess.run(["sh", "-c", "command -v mariadb"], stdout=subprocess.DEVNULL).returncode != 0:
        cli = "mysql"
    env = dict(os.environ, MYSQL_PWD=os.environ.get("STOCK_DB_PASSWORD", "iotronic"))
    cmd = [cli, "--protocol=TCP", "-h", "127.0.0.1", "-P", port,
           "-u", os.environ.get("STOCK_DB_USER", "iotronic"), "--batch", "--skip-column-names",
           "--default-character-set=utf8", os.environ.get("STOCK_DB_NAME", "iotronic")]
    p = subprocess.run(cmd, input=sql, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    if p.returncode != 0:
        sys.exit("mariadb failed (is start.sh running?): %s" % p.stderr.strip())
    if fetch:
        return [line.split("\t") for line in p.stdout.splitlines() if line]
    return None


def q(v):
    """SQL literal."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    s = str(v).replace("\\", "\\\\").replace("'", "\\'")
    return "'%s'" % s


def board_rows(first_id, count, agent, online, now_sql, now_iso):
    boards, locations, sessions = [], [], []
    for bid in range(first_id, first_id + count):
        u = str(uuid.uuid4())
        name = "bench-board-%05d" % bid
        code = "BENCH%05d%s" % (bid, u[:8].upper())  # unique, <= 25 chars
        # deterministic, plausible coordinates (around Messina) per board
        loc = {"longitude": "%.5f" % (15.55 + (bid % 97) * 0.001),
               "latitude": "%.5f" % (38.19 + (bid % 89) * 0.001),
               "altitude": str(bid % 50)}
        # what the conductor stores in boards.config when the board is created
        config = {"iotronic": {
            "extra": {},
            "board": {"id": bid, "uuid": u, "code": code, "status": "registered", "name": name,
                      "type": "server", "agent": agent, "owner": None, "project": None, "fleet": None,
                      "lr_version": None, "connectivity": {}, "mobile": False, "extra": {},
                      "created_at": now_iso, "updated_at": None,
                      "location": dict(loc, updated_at=now_iso)},
            "wamp": {"registration-agent": {"url": WSURL, "realm": REALM},
                     "main-agent": {"url": WSURL, "realm": REALM}}}}
        connectivity = {"iface": "eth0", "local_ip": "127.0.0.1",
                        "mac": "02:00:%02x:%02x:%02x:%02x" % ((bid >> 24) & 255, (bid >> 16) & 255,
                                                             (bid >> 8) & 255, bid & 255)}
        boards.append("(%s)" % ",".join([
            now_sql, now_sql, q(bid), q(u), q(code), q("online" if online else "offline"), q(name),
            q("server"), q(agent), "NULL", "NULL", "0", q(json.dumps(config)), q("{}"), "NULL",
            q("0.5.0"), q(json.dumps(connectivity))]))
        locations.append("(%s)" % ",".join([now_sql, "NULL", q(loc["longitude"]), q(loc["latitude"]),
                                            q(loc["altitude"]), q(bid)]))
        if online:
            session_id = str(1000000000000000 + bid * 7919)  # WAMP session ids are 53-bit integers
            sessions.append("(%s)" % ",".join([now_sql, "NULL", "1", q(session_id), q(u), q(bid)]))
    return boards, locations, sessions


def chunks(xs, n):
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", type=int, help="number of boards the DB must hold")
    ap.add_argument("--agent", default=os.environ.get("STOCK_AGENT", "stock-agent"),
                    help="wamp agent hostname set on the boards (default stock-agent)")
    ap.add_argument("--offline", action="store_true", help="new boards offline, without a session row")
    a = ap.parse_args()
    if a.n < 0:
        sys.exit("N must be >= 0")

    now = datetime.datetime.utcnow().replace(microsecond=0)
    now_sql = q(now.strftime("%Y-%m-%d %H:%M:%S"))
    now_iso = now.strftime("%Y-%m-%dT%H:%M:%S+00:00")

    sql = ["SET autocommit=0;",
           "INSERT INTO wampagents (created_at, updated_at, hostname, wsurl, online, ragent) "
           "VALUES (%s, NULL, %s, %s, 1, 1) ON DUPLICATE KEY UPDATE wsurl=VALUES(wsurl), online=1, "
           "ragent=1, updated_at=%s;" % (now_sql, q(a.agent), q(WSURL), now_sql)]

    have = int(mariadb("SELECT COUNT(*) FROM boards;", fetch=True)[0][0])
    if have > a.n:
        cut = "SELECT id FROM (SELECT id FROM boards ORDER BY id DESC LIMIT %d) t" % (have - a.n)
        sql += ["DELETE FROM sessions WHERE board_id IN (%s);" % cut,
                "DELETE FROM locations WHERE board_id IN (%s);" % cut,
                "DELETE FROM boards WHERE id IN (%s);" % cut]
    elif have < a.n:
        first = int(mariadb("SELECT COALESCE(MAX(id), 0) + 1 FROM boards;", fetch=True)[0][0])
        boards, locations, sessions = board_rows(first, a.n - have, a.agent, not a.offline, now_sql, now_iso)
        for part in chunks(boards, BATCH):
            sql.append("INSERT INTO boards (created_at, updated_at, id, uuid, code, status, name, type, agent, "
                       "owner, project, mobile, config, extra, fleet, lr_version, connectivity) VALUES\n%s;"
                       % ",\n".join(part))
        for part in chunks(locations, BATCH):
            sql.append("INSERT INTO locations (created_at, updated_at, longitude, latitude, altitude, board_id) "
                       "VALUES\n%s;" % ",\n".join(part))
        for part in chunks(sessions, BATCH):
            sql.append("INSERT INTO sessions (created_at, updated_at, valid, session_id, board_uuid, board_id) "
                       "VALUES\n%s;" % ",\n".join(part))
    sql.append("COMMIT;")
    mariadb("\n".join(sql) + "\n")

    counts = mariadb("SELECT (SELECT COUNT(*) FROM boards), (SELECT COUNT(*) FROM locations), "
                     "(SELECT COUNT(*) FROM sessions WHERE valid=1), "
                     "(SELECT COUNT(*) FROM boards WHERE status='online');", fetch=True)[0]
    print("boards %s (was %d), locations %s, valid sessions %s, online %s, agent %s"
          % (counts[0], have, counts[1], counts[2], counts[3], a.agent))
    sample = mariadb("SELECT uuid, name FROM boards ORDER BY id LIMIT 1;", fetch=True)
    if sample:
        print("sample_board %s %s" % (sample[0][0], sample[0][1]))


if __name__ == "__main__":
    main()
