#!/usr/bin/env python3
"""OAuth2 token introspection endpoint (RFC 7662) for the test Dovecot.

Usage: oauth_introspect.py PORT TOKENS_FILE PID_FILE

Listens on 127.0.0.1:PORT. POST /introspect with the form field token=... answers
{"active": true, "username": LOGIN} when the token is a line "TOKEN LOGIN" of
TOKENS_FILE, else {"active": false}. Writes PID_FILE once it listens (readiness),
removes it on SIGTERM. Tokens are never logged (each request is one line: the verdict).
"""
import http.server
import json
import os
import signal
import sys
import urllib.parse


def load_tokens(path):
    tokens = {}
    with open(path, encoding="ascii") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                tokens[parts[0]] = parts[1]
    return tokens


class Handler(http.server.BaseHTTPRequestHandler):
    tokens = {}

    def answer(self, token):
        login = self.tokens.get(token) if token else None
        body = {"active": True, "username": login} if login else {"active": False}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        sys.stderr.write("introspect: %s\n" % ("active " + login if login else "inactive"))

    def do_POST(self):
        if urllib.parse.urlsplit(self.path).path != "/introspect":
            self.send_error(404)
            return
        length = min(int(self.headers.get("Content-Length") or 0), 65536)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("ascii", "replace"))
        self.answer((form.get("token") or [""])[0])

    def log_message(self, fmt, *args):  # the default would log the request line
        pass


def main():
    port, tokens_file, pid_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    Handler.tokens = load_tokens(tokens_file)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)

    def stop(_signum, _frame):
        try:
            os.unlink(pid_file)
        finally:
            os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    tmp = pid_file + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("%d\n" % os.getpid())
    os.rename(tmp, pid_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
