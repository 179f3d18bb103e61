#!/usr/bin/env python3
"""An external client adapter for store.py: it speaks the harness's adapter protocol
(docs/adapters.md) on stdin/stdout and store.py's line protocol over TCP.

The harness starts one adapter process per client worker and node, sends one request at a time,
and reads one answer line per request. The mapping to ok / fail / info is the whole point:
`fail` only when the store surely did not apply the operation (a refused connection before
sending, a CAS mismatch); `info` whenever it may have (a timeout, a connection lost after
sending, an answer we do not understand).
"""

import json
import socket
import sys


def answer(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Conn:
    def __init__(self):
        self.sock = None
        self.file = None

    def open(self, addr, timeout):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def close(self):
        for x in (self.file, self.sock):
            try:
                if x:
                    x.close()
            except OSError:
                pass
        self.sock = self.file = None

    def call(self, line, timeout):
        self.sock.settimeout(timeout)
        self.sock.sendall((line + "\n").encode())
        reply = self.file.readline().decode("utf-8", "replace").strip()
        if not reply:
            raise ConnectionError("connection closed by the store")
        return reply


def main():
    conn = Conn()
    for raw in sys.stdin:
        req = json.loads(raw)
        rid, op = req["id"], req["op"]
        if op == "hello":
            answer({"id": rid, "type": "ok", "protocol": 1, "name": "pystore-adapter"})
            continue
        timeout = max(req.get("timeout_ms", 1000), 1) / 1000.0
        if conn.sock is None:
            try:
                conn.open(req["addr"], timeout)
            except OSError as e:
                # Nothing was sent: surely not applied.
                answer({"id": rid, "type": "fail", "error": f"connect: {e}"})
                continue
        if op == "status":
            line = "GET __status__"
        elif op == "read":
            line = f"GET {req['key']}"
        elif op == "write":
            line = f"SET {req['key']} {req['value']}"
        elif op == "cas":
            line = f"CAS {req['key']} {req['from']} {req['to']}"
        else:
            answer({"id": rid, "type": "fail", "error": f"unknown op {op}"})
            continue
        try:
            reply = conn.call(line, timeout)
        except (OSError, ConnectionError) as e:
            # Sent, no answer: it may have been applied.
            conn.close()
            answer({"id": rid, "type": "info", "error": f"{type(e).__name__}: {e}"})
            continue
        if op == "status":
            answer({"id": rid, "type": "ok", "role": "leader"})
        elif reply.startswith("VALUE "):
            answer({"id": rid, "type": "ok", "value": json.loads(reply[6:])})
        elif reply == "OK":
            answer({"id": rid, "type": "ok"})
        elif reply.startswith("MISMATCH "):
            answer({"id": rid, "type": "fail", "error": "cas_mismatch", "current": json.loads(reply[9:])})
        else:
            conn.close()
            answer({"id": rid, "type": "info", "error": f"unexpected answer {reply!r}"})


if __name__ == "__main__":
    main()
