#!/usr/bin/env python3
"""An example external adapter (protocol 1, see docs/adapters.md).

It forwards the harness's operations to a store speaking the native JSON-lines protocol of
docs/protocol.md, and maps each answer to ok / fail / not_leader / info. It uses only the
standard library; a real adapter would use the store's own client library instead of the
socket code below, and keep the same shape:

    for each line on stdin: parse the request, run it against the store, print one answer line.

Run by the harness as, e.g.:

    [client]
    adapter = "external"
    command = ["python3", "crates/adapters/examples/native_adapter.py"]
"""

import json
import socket
import sys
import time

PROTOCOL = 1
# Errors after which the operation surely did not take effect (docs/protocol.md).
DEFINITE = {"bad_request", "dropped", "overwritten"}


class NotSent(Exception):
    """Nothing reached the store: the operation surely did not take effect."""


class Lost(Exception):
    """The request may have reached the store: the outcome is unknown."""


class Store:
    """One connection to a native-protocol node; reconnects when it is gone."""

    def __init__(self, addr):
        host, _, port = addr.rpartition(":")
        self.addr = (host.strip("[]"), int(port))
        self.sock = None
        self.buf = b""
        self.next_id = 1

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = b""

    def connect(self, timeout):
        try:
            self.sock = socket.create_connection(self.addr, timeout=max(timeout, 0.001))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            self.close()
            raise NotSent(f"connect {self.addr[0]}:{self.addr[1]}: {e}")

    def call(self, request, deadline):
        """Sends one request and returns its answer (a dict)."""
        if self.sock is None:
            self.connect(deadline - time.monotonic())
        request = dict(request, id=self.next_id)
        self.next_id += 1
        try:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            self.sock.sendall((json.dumps(request) + "\n").encode())
            while b"\n" not in self.buf:
                self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise Lost("connection closed by the store")
                self.buf += chunk
        except socket.timeout:
            self.close()
            raise Lost("timeout")
        except OSError as e:
            self.close()
            raise Lost(f"connection: {e}")
        line, _, self.buf = self.buf.partition(b"\n")
        try:
            answer = json.loads(line)
        except ValueError:
            self.close()
            raise Lost(f"garbled answer: {line[:200]!r}")
        if not isinstance(answer, dict) or answer.get("id") != request["id"]:
            self.close()
            raise Lost(f"answer to another request: {line[:200]!r}")
        return answer


def run_op(store, req):
    """Runs one read / write / cas and returns the answer for the harness."""
    deadline = time.monotonic() + req.get("timeout_ms", 5000) / 1000.0
    op = req["op"]
    native = {"op": op, "key": req["key"]}
    if op == "write":
        native["value"] = req["value"]
    elif op == "cas":
        native["from"] = req["from"]
        native["to"] = req["to"]
    if op != "read" and req.get("client") is not None:
        native["client"] = req["client"]
        native["seq"] = req["seq"]
    try:
        a = store.call(native, deadline)
    except NotSent as e:
        return {"type": "fail", "error": str(e)}
    except Lost as e:
        return {"type": "info", "error": str(e)}
    if a.get("ok") is True:
        return {"type": "ok", "value": a.get("value")} if op == "read" else {"type": "ok"}
    error = a.get("error") or "unknown"
    if error == "not_leader":
        return {"type": "not_leader", "leader": a.get("leader")}
    if error == "cas_mismatch":
        return {"type": "fail", "error": "cas_mismatch", "current": a.get("value")}
    if error in DEFINITE:
        return {"type": "fail", "error": error}
    return {"type": "info", "error": error}


def run_status(store, req):
    deadline = time.monotonic() + req.get("timeout_ms", 5000) / 1000.0
    try:
        a = store.call({"op": "status"}, deadline)
    except (NotSent, Lost) as e:
        return {"type": "info", "error": str(e)}
    if a.get("ok") is not True:
        return {"type": "fail", "error": a.get("error") or "status refused"}
    return {"type": "ok", **{k: a.get(k) for k in ("node", "role", "term", "leader", "cluster")}}


def main():
    store = None
    for line in sys.stdin:  # ends when the harness closes stdin: then exit
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.get("op")
        if op == "hello":
            if req.get("protocol", 0) < PROTOCOL:
                answer = {"type": "fail", "error": f"this adapter speaks protocol {PROTOCOL}"}
            else:
                store = Store(req["addr"])
                try:
                    store.connect(5.0)
                    answer = {"type": "ok", "protocol": PROTOCOL, "name": "native_adapter.py"}
                except NotSent as e:
                    answer = {"type": "fail", "error": str(e)}
        elif store is None:
            answer = {"type": "fail", "error": "no hello yet"}
        elif op in ("read", "write", "cas"):
            answer = run_op(store, req)
        elif op == "status":
            answer = run_status(store, req)
        else:
            answer = {"type": "fail", "error": f"unsupported op {op!r}"}
        answer["id"] = req.get("id")
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
