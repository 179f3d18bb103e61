#!/usr/bin/env python3
"""A tiny single-node key-value store, file-backed: the example store of docs/plugging-in.md.

It speaks its own line protocol (not the harness's), one request per line, answers in order:

    GET <key>               ->  VALUE <json value or null>
    SET <key> <value>       ->  OK
    CAS <key> <from> <to>   ->  OK  |  MISMATCH <json current value or null>
    anything else           ->  ERR <reason>

Keys and values are single words. Every update is written to a temporary file, fsynced, and
renamed over the state file (then the directory is fsynced) before it is acknowledged, so an
acknowledged write survives SIGKILL. One lock orders every request: trivially linearizable.
"""

import argparse
import json
import os
import socketserver
import sys
import threading


class Store:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.data = {}
        if os.path.exists(path):
            with open(path) as f:
                self.data = json.load(f)

    def _persist(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dirfd = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)

    def handle(self, words):
        with self.lock:
            if words[:1] == ["GET"] and len(words) == 2:
                return "VALUE " + json.dumps(self.data.get(words[1]))
            if words[:1] == ["SET"] and len(words) == 3:
                self.data[words[1]] = words[2]
                self._persist()
                return "OK"
            if words[:1] == ["CAS"] and len(words) == 4:
                current = self.data.get(words[1])
                if current != words[2]:
                    return "MISMATCH " + json.dumps(current)
                self.data[words[1]] = words[3]
                self._persist()
                return "OK"
            return "ERR bad request"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True, help="host:port to serve on")
    ap.add_argument("--data", required=True, help="the state file")
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    os.makedirs(os.path.dirname(os.path.abspath(args.data)), exist_ok=True)
    store = Store(args.data)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                reply = store.handle(line.decode("utf-8", "replace").split())
                self.wfile.write((reply + "\n").encode())
                self.wfile.flush()

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    with socketserver.ThreadingTCPServer((host, int(port)), Handler) as server:
        print(f"pystore serving on {args.listen}, state in {args.data}", file=sys.stderr, flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
