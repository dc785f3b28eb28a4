#!/usr/bin/python3
"""MTA-STS policy host for the mxlock test network: HTTPS on one address.

Serves GET /.well-known/mta-sts.txt for every Host header "mta-sts.DOMAIN"
(RFC 8461 section 3.3) from files in --policy-dir, read at each request so a
test can change them while the server runs:

  DOMAIN.txt           the policy body (missing: 404)
  DOMAIN.content-type  the Content-Type header (default "text/plain")
  DOMAIN.redirect      answer 301 with this URL as Location instead
  DOMAIN.status        answer with this status code (for example 500) instead
  DOMAIN.delay         wait this many seconds (a decimal number) first

Certificates are chosen by the TLS server name (SNI): a --sni-cert for that
exact name, else NAME.chain.pem and NAME.key if --cert-dir contains them,
else the default --cert. Every request is appended to --access-log as one line
of key=value fields: time, peer, sni, host, path, status.
"""

import argparse
import datetime
import http.server
import logging
import os
import signal
import socketserver
import ssl
import sys
import threading
import time

POLICY_PATH = "/.well-known/mta-sts.txt"

log = logging.getLogger("sts_host")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True, help="IP address to listen on")
    parser.add_argument("--port", type=int, default=443, help="TCP port (default 443)")
    parser.add_argument("--policy-dir", required=True,
                        help="folder with DOMAIN.txt and the other per-domain files")
    parser.add_argument("--cert", nargs=2, required=True, metavar=("CHAIN", "KEY"),
                        help="default certificate chain and key (PEM)")
    parser.add_argument("--sni-cert", nargs=3, action="append", default=[],
                        metavar=("NAME", "CHAIN", "KEY"),
                        help="certificate for one server name; repeatable")
    parser.add_argument("--cert-dir",
                        help="folder searched for SNI.chain.pem and SNI.key")
    parser.add_argument("--access-log", required=True, help="file that requests are appended to")
    return parser.parse_args()


def server_context(chain_file, key_file):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain_file, key_file)
    return context


class CertificateSelector:
    """SNI callback that swaps the connection's context by server name."""

    def __init__(self, default_context, sni_certs, cert_dir):
        self.default_context = default_context
        self.contexts = {name.lower(): server_context(chain, key)
                         for name, chain, key in sni_certs}
        self.cert_dir = cert_dir
        self.lock = threading.Lock()

    def context_for(self, server_name):
        name = server_name.lower()
        with self.lock:
            if name in self.contexts:
                return self.contexts[name]
            if self.cert_dir and "/" not in name:
                chain = os.path.join(self.cert_dir, name + ".chain.pem")
                key = os.path.join(self.cert_dir, name + ".key")
                if os.path.exists(chain) and os.path.exists(key):
                    self.contexts[name] = server_context(chain, key)
                    return self.contexts[name]
        return None

    def __call__(self, ssl_object, server_name, _context):
        ssl_object.mxlock_sni = server_name
        if server_name:
            context = self.context_for(server_name)
            if context is not None:
                ssl_object.context = context


def read_text(path):
    try:
        with open(path, encoding="utf-8") as source:
            return source.read().strip()
    except FileNotFoundError:
        return None


class PolicyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mxlock-test-sts"
    sys_version = ""

    def do_GET(self):
        status = self.respond()
        sni = getattr(self.connection, "mxlock_sni", None)
        line = "time=%s peer=%s sni=%s host=%s path=%s status=%d\n" % (
            datetime.datetime.now(datetime.timezone.utc).isoformat(),
            self.client_address[0], sni or "-", self.headers.get("Host", "-"),
            self.path, status)
        with self.server.log_lock, open(self.server.access_log, "a") as output:
            output.write(line)

    def respond(self):
        """Send the response for this request and return its status code."""
        host = (self.headers.get("Host") or "").lower().rsplit(":", 1)[0]
        if self.path != POLICY_PATH or not host.startswith("mta-sts.") or "/" in host:
            return self.send_body(404, "not found\n", "text/plain")
        base = os.path.join(self.server.policy_dir, host[len("mta-sts."):])

        delay = read_text(base + ".delay")
        if delay:
            time.sleep(float(delay))
        redirect = read_text(base + ".redirect")
        if redirect:
            return self.send_body(301, "moved\n", "text/plain", location=redirect)
        status = read_text(base + ".status")
        if status:
            return self.send_body(int(status), "status set by test\n", "text/plain")
        try:
            with open(base + ".txt", "rb") as source:
                body = source.read()
        except FileNotFoundError:
            return self.send_body(404, "no policy\n", "text/plain")
        content_type = read_text(base + ".content-type") or "text/plain"
        return self.send_body(200, body, content_type)

    def send_body(self, status, body, content_type, location=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True
        return status

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        log.info("%s %s", self.client_address[0], format % args)


class TlsServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, args, context):
        super().__init__((args.address, args.port), PolicyHandler)
        self.context = context
        self.policy_dir = args.policy_dir
        self.access_log = args.access_log
        self.log_lock = threading.Lock()

    def get_request(self):
        # The handshake happens in the handler's thread, on its first read,
        # so a slow or broken client never blocks the accept loop.
        connection, address = self.socket.accept()
        connection.settimeout(30)
        return (self.context.wrap_socket(connection, server_side=True,
                                         do_handshake_on_connect=False), address)

    def handle_error(self, request, client_address):
        log.info("connection from %s failed: %s", client_address[0], sys.exc_info()[1])


def main():
    args = parse_args()
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    context = server_context(*args.cert)
    context.sni_callback = CertificateSelector(context, args.sni_cert, args.cert_dir)
    server = TlsServer(args, context)

    def stop(_signal_number, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("listening on %s:%d, policies in %s", args.address, args.port, args.policy_dir)
    server.serve_forever()
    server.server_close()
    log.info("stopped")


if __name__ == "__main__":
    main()
