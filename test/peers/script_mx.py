#!/usr/bin/python3
"""Scripted SMTP server that misbehaves on purpose, for mxlock's tests.

Plays one conversation per TCP connection, chosen by --scenario NAME or read
from --script FILE, and records what the client did in the --out folder:
  commands.log  every line the client sent: "conn=N C: <line>"
  events.log    what the scenario observed: "conn=N event=... key=value"
  N.eml/N.json  each accepted message (dot-unstuffed bytes, then the envelope)

Scenarios (run with --scenario NAME; --list prints them):
  plain               a normal MX without STARTTLS
  starttls            a normal MX with STARTTLS (needs --tls-chain/--tls-key)
  inject              sends "220 go ahead" and "250 injected" in one send() as
                      the STARTTLS reply, then logs what the client did next
  slow-greeting       "220-first", 3 s later "220 last"; logs early client data
  split               every reply goes out one byte per send()
  bare-lf             replies end in LF instead of CRLF
  long-line           a 5000-byte greeting line
  code-change         EHLO reply "250-a" then "251 b"
  ehlo-lower          EHLO lists "starttls" in lower case; STARTTLS works
  ehlo-greeting-only  STARTTLS appears only in the greeting text
  ehlo-domain-slot    "STARTTLS" is the server name in the first EHLO line
  ehlo-param          EHLO lists "STARTTLS foo"; STARTTLS works
  starttls-refused    STARTTLS is offered but answered with 502
  handshake-fail      STARTTLS gets 220, then plaintext instead of TLS
  caps-change         SIZE, 8BITMIME and SMTPUTF8 offered before TLS only
  minimal             an EHLO reply with no extension

Script files hold one step per line ('#' starts a comment):
  send "TEXT"         send the bytes of a Python string literal in one send()
  send-split "TEXT"   send them one byte per send()
  sleep SECONDS
  expect PREFIX       read one line; close unless it starts with PREFIX
  starttls            start TLS as the server (after sending a 220 reply)
  serve               act as a normal MX without STARTTLS from here on
  close               close the connection (also done after the last step)
"""

import argparse
import ast
import json
import os
import select
import socket
import socketserver
import ssl
import sys
import threading
import time

MAX_LINE = 64 * 1024
MAX_MESSAGE = 200 * 1024 * 1024
SPLIT_DELAY = 0.002
OBSERVE_SECONDS = 3.0


class Recorder:
    """Writes the logs and messages of all connections into one folder."""

    def __init__(self, folder):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.lock = threading.Lock()
        self.connections = 0
        self.messages = 0

    def new_connection(self):
        with self.lock:
            self.connections += 1
            return self.connections

    def append(self, name, text):
        with self.lock, open(os.path.join(self.folder, name), "a") as log:
            log.write(text + "\n")

    def store_message(self, record, content):
        with self.lock:
            self.messages += 1
            number = self.messages
        base = os.path.join(self.folder, str(number))
        with open(base + ".eml.tmp", "wb") as output:
            output.write(content)
        os.replace(base + ".eml.tmp", base + ".eml")
        record["number"] = number
        with open(base + ".json.tmp", "w") as output:
            json.dump(record, output, indent=2)
            output.write("\n")
        os.replace(base + ".json.tmp", base + ".json")
        return number


def split_path(argument):
    """Split "<address> PARAM..." into the address without brackets and the
    list of parameters."""
    path, _, parameters = argument.partition(" ")
    return path.strip("<>"), parameters.split()


class Conversation:
    """One client connection: sending, reading lines and the normal MX loop."""

    def __init__(self, sock, number, recorder, options):
        self.sock = sock
        self.number = number
        self.recorder = recorder
        self.options = options
        self.buffer = b""
        self.line_end = b"\r\n"
        self.split = False
        self.tls = None

    # Output.

    def send(self, data, split=None):
        if split is None:
            split = self.split
        if not split:
            self.sock.sendall(data)
            return
        for index in range(len(data)):
            self.sock.send(data[index:index + 1])
            time.sleep(SPLIT_DELAY)

    def reply(self, *lines):
        self.send(b"".join(line.encode("latin-1") + self.line_end for line in lines))

    def event(self, name, **details):
        text = " ".join("%s=%s" % (key, value) for key, value in details.items())
        self.recorder.append("events.log",
                             ("conn=%d event=%s %s" % (self.number, name, text)).rstrip())

    # Input.

    def read_line(self, timeout=300):
        """Return the next line with its ending, or None on EOF or timeout."""
        self.sock.settimeout(timeout)
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE:
                self.event("line-too-long", bytes=len(self.buffer))
                return None
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLError, OSError):
                return None
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def read_command(self):
        line = self.read_line()
        if line is not None:
            text = line.rstrip(b"\r\n").decode("latin-1")
            self.recorder.append("commands.log", "conn=%d C: %s" % (self.number, text))
        return line

    def wait_readable(self, seconds):
        """Return the first bytes the client sends within seconds, b"" on EOF,
        or None when it sends nothing. The bytes stay unread."""
        if self.buffer:
            return self.buffer
        ready, _, _ = select.select([self.sock], [], [], seconds)
        if not ready:
            return None
        try:
            return self.sock.recv(64, socket.MSG_PEEK)
        except OSError:
            return b""

    # TLS.

    def start_tls(self):
        """Start TLS as the server; return False if the handshake failed."""
        if self.options.tls_context is None:
            self.event("tls-failed", reason="no_certificate_given")
            return False
        if self.buffer:
            self.event("plaintext-before-handshake", bytes=len(self.buffer))
            self.buffer = b""
        try:
            self.sock = self.options.tls_context.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError) as error:
            self.event("tls-failed", reason=str(error).replace(" ", "_"))
            return False
        self.tls = self.sock.version()
        self.event("tls", version=self.tls)
        return True

    # The normal MX loop.

    def serve(self, ehlo_lines=None, starttls=False, tls_ehlo_lines=None,
              broken_tls=False):
        """Act as an MX host until QUIT or EOF. ehlo_lines replaces the EHLO
        reply before TLS and tls_ehlo_lines the one after it; starttls makes
        STARTTLS work; broken_tls answers STARTTLS with 220 and then sends
        bytes that are not TLS and closes."""
        hostname = self.options.hostname
        plain_ehlo = ["250-" + hostname, "250-8BITMIME", "250 SIZE %d" % MAX_MESSAGE]
        if tls_ehlo_lines is not None:
            plain_ehlo = tls_ehlo_lines
        if ehlo_lines is None:
            ehlo_lines = plain_ehlo[:-1] + ["250-STARTTLS"] * starttls + plain_ehlo[-1:]
        envelope = {"mail_from": None, "mail_options": [], "rcpt_tos": []}

        while True:
            line = self.read_command()
            if line is None:
                self.event("client-closed")
                return
            verb = line.split(b" ", 1)[0].strip().upper()
            # What follows "FROM:" or "TO:", parameters included.
            argument = line.rstrip(b"\r\n").decode("latin-1").partition(":")[2].strip()
            if verb == b"EHLO":
                self.reply(*(plain_ehlo if self.tls else ehlo_lines))
            elif verb == b"HELO":
                self.reply("250 " + hostname)
            elif verb == b"STARTTLS" and broken_tls:
                self.reply("220 2.0.0 Ready to start TLS")
                # Wait for the ClientHello, then answer with plaintext.
                self.wait_readable(OBSERVE_SECONDS)
                self.send(b"HTTP/1.0 400 this is not TLS\r\n\r\n")
                self.event("broken-tls")
                return
            elif verb == b"STARTTLS" and starttls and not self.tls:
                self.reply("220 2.0.0 Ready to start TLS")
                if not self.start_tls():
                    return
            elif verb == b"MAIL":
                address, options = split_path(argument)
                envelope = {"mail_from": address, "mail_options": options, "rcpt_tos": []}
                self.reply("250 2.1.0 OK")
            elif verb == b"RCPT":
                envelope["rcpt_tos"].append(split_path(argument)[0])
                self.reply("250 2.1.5 OK")
            elif verb == b"DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                number = self.receive_message(envelope)
                if number is None:
                    return
                self.reply("250 2.0.0 OK stored as %d" % number)
            elif verb in (b"RSET", b"NOOP"):
                self.reply("250 2.0.0 OK")
            elif verb == b"QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.1 Command not implemented")

    def receive_message(self, envelope):
        lines = []
        size = 0
        while True:
            line = self.read_line()
            if line is None:
                self.event("client-closed-in-data")
                return None
            if line in (b".\r\n", b".\n"):
                break
            size += len(line)
            if size > MAX_MESSAGE:
                self.event("message-too-large")
                return None
            # RFC 5321 section 4.5.2: remove the dot added for transparency.
            lines.append(line[1:] if line.startswith(b".") else line)
        record = dict(envelope, conn=self.number, tls=self.tls,
                      peer=self.sock.getpeername()[0])
        content = b"".join(lines)
        number = self.recorder.store_message(record, content)
        self.event("message", number=number, size=len(content))
        return number


# Scenarios. Each takes a Conversation right after the TCP accept.

def scenario_plain(conv):
    conv.reply("220 %s ESMTP script_mx" % conv.options.hostname)
    conv.serve()


def scenario_starttls(conv):
    conv.reply("220 %s ESMTP script_mx" % conv.options.hostname)
    conv.serve(starttls=True)


def scenario_inject(conv):
    """Plaintext injected after the STARTTLS reply, as in Exim's
    CVE-2021-38371. A safe client never acts on bytes that arrive before the
    handshake."""
    conv.reply("220 %s ESMTP script_mx" % conv.options.hostname)
    while True:
        line = conv.read_command()
        if line is None:
            conv.event("client-closed")
            return
        verb = line.strip().upper()
        if verb.startswith(b"EHLO"):
            conv.reply("250-" + conv.options.hostname, "250-PIPELINING", "250 STARTTLS")
        elif verb == b"STARTTLS":
            break
        else:
            conv.reply("503 5.5.1 Send STARTTLS first")

    conv.send(b"220 go ahead\r\n250 injected\r\n")
    conv.event("injected")
    first = conv.wait_readable(OBSERVE_SECONDS)
    if first is None:
        conv.event("after-inject", result="silent")
        first = conv.wait_readable(300)
    if not first:
        conv.event("after-inject", result="closed")
        return
    if first[0] == 0x16:
        conv.event("after-inject", result="tls-handshake")
        if conv.options.tls_context is not None and conv.start_tls():
            conv.serve()
        return
    conv.event("after-inject", result="plaintext")
    conv.serve()


def scenario_slow_greeting(conv):
    """RFC 5321 section 4.2: the greeting ends only at its last line."""
    conv.send(b"220-first\r\n")
    started = time.monotonic()
    early = conv.wait_readable(OBSERVE_SECONDS)
    if early:
        conv.event("early-data", result="yes", bytes=len(early))
    else:
        conv.event("early-data", result="no")
    time.sleep(max(0.0, OBSERVE_SECONDS - (time.monotonic() - started)))
    conv.send(b"220 last\r\n")
    conv.serve()


def scenario_split(conv):
    conv.split = True
    scenario_plain(conv)


def scenario_bare_lf(conv):
    conv.line_end = b"\n"
    scenario_plain(conv)


def scenario_long_line(conv):
    # 5000 bytes including CRLF, far over the 512-byte reply line limit of
    # RFC 5321 section 4.5.3.1.5.
    conv.send(b"220 " + b"x" * (5000 - 6) + b"\r\n")
    conv.serve()


def scenario_code_change(conv):
    conv.reply("220 %s ESMTP script_mx" % conv.options.hostname)
    conv.serve(ehlo_lines=["250-a", "251 b"])


def scenario_ehlo_lower(conv):
    conv.reply("220 %s ESMTP script_mx" % conv.options.hostname)
    conv.serve(ehlo_lines=["250-" + conv.options.hostname, "250-starttls", "250 8BITMIME"],
               starttls=True)


def scenario_ehlo_greeting_only(conv):
    conv.reply("220 x STARTTLS ESMTP")
    conv.serve(ehlo_lines=["250-" + conv.options.hostname, "250 8BITMIME"])


def scenario_ehlo_domain_slot(conv):
    conv.reply("220 %s ESMTP script_mx" % conv.options.hostname)
    conv.serve(ehlo_lines=["250-STARTTLS", "250 8BITMIME"])


def scenario_ehlo_param(conv):
    conv.reply("220 %s ESMTP script_mx" % conv.options.hostname)
    conv.serve(ehlo_lines=["250-" + conv.options.hostname, "250-STARTTLS foo", "250 8BITMIME"],
               starttls=True)


def scenario_starttls_refused(conv):
    """STARTTLS is offered, but the command gets 502."""
    conv.reply("220 %s ESMTP script_mx" % conv.options.hostname)
    conv.serve(ehlo_lines=["250-" + conv.options.hostname, "250 STARTTLS"])


def scenario_handshake_fail(conv):
    """STARTTLS gets 220, then the server answers the ClientHello with
    plaintext and closes."""
    conv.reply("220 %s ESMTP script_mx" % conv.options.hostname)
    conv.serve(starttls=True, broken_tls=True)


def scenario_caps_change(conv):
    """SIZE and 8BITMIME are offered before TLS only; after TLS the EHLO
    reply lists no extension (RFC 3207 section 4.2)."""
    conv.reply("220 %s ESMTP script_mx" % conv.options.hostname)
    conv.serve(ehlo_lines=["250-" + conv.options.hostname, "250-SIZE 1000000",
                           "250-8BITMIME", "250-SMTPUTF8", "250 STARTTLS"],
               starttls=True, tls_ehlo_lines=["250 " + conv.options.hostname])


def scenario_minimal(conv):
    """An EHLO reply with no extension at all."""
    conv.reply("220 %s ESMTP script_mx" % conv.options.hostname)
    conv.serve(ehlo_lines=["250 " + conv.options.hostname])


SCENARIOS = {
    "plain": scenario_plain,
    "starttls-refused": scenario_starttls_refused,
    "handshake-fail": scenario_handshake_fail,
    "caps-change": scenario_caps_change,
    "minimal": scenario_minimal,
    "starttls": scenario_starttls,
    "inject": scenario_inject,
    "slow-greeting": scenario_slow_greeting,
    "split": scenario_split,
    "bare-lf": scenario_bare_lf,
    "long-line": scenario_long_line,
    "code-change": scenario_code_change,
    "ehlo-lower": scenario_ehlo_lower,
    "ehlo-greeting-only": scenario_ehlo_greeting_only,
    "ehlo-domain-slot": scenario_ehlo_domain_slot,
    "ehlo-param": scenario_ehlo_param,
}

TLS_SCENARIOS = {"starttls", "ehlo-lower", "ehlo-param", "caps-change"}


# Script files.

def parse_script(path):
    """Return the steps of a script file as (line number, verb, argument)."""
    steps = []
    with open(path) as script:
        for number, raw in enumerate(script, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            verb, _, argument = line.partition(" ")
            if verb in ("send", "send-split"):
                argument = ast.literal_eval(argument).encode("latin-1")
            elif verb == "sleep":
                argument = float(argument)
            elif verb not in ("expect", "starttls", "serve", "close"):
                raise SystemExit("script_mx: %s line %d: unknown step '%s'"
                                 % (path, number, verb))
            steps.append((number, verb, argument))
    return steps


def run_script(conv, steps):
    for number, verb, argument in steps:
        if verb == "send":
            conv.send(argument, split=False)
        elif verb == "send-split":
            conv.send(argument, split=True)
        elif verb == "sleep":
            time.sleep(argument)
        elif verb == "expect":
            line = conv.read_command()
            if line is None or not line.decode("latin-1").upper().startswith(argument.upper()):
                conv.event("expect-failed", step=number, expected=argument.replace(" ", "_"))
                return
        elif verb == "starttls":
            if not conv.start_tls():
                return
        elif verb == "serve":
            conv.serve()
            return
        elif verb == "close":
            return


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        options = self.server.options
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conv = Conversation(sock, self.server.recorder.new_connection(),
                            self.server.recorder, options)
        conv.event("connect", peer="%s:%d" % self.client_address)
        try:
            if options.steps is not None:
                run_script(conv, options.steps)
            else:
                SCENARIOS[options.scenario](conv)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError) as error:
            conv.event("connection-error", reason=type(error).__name__)
        finally:
            conv.sock.close()


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", help="IP address to listen on")
    parser.add_argument("--port", type=int, default=25, help="TCP port (default 25)")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--scenario", choices=sorted(SCENARIOS), help="built-in scenario")
    choice.add_argument("--script", help="script file (format in --help)")
    parser.add_argument("--out", help="folder for commands.log, events.log and messages")
    parser.add_argument("--hostname", default="peer.test",
                        help="host name in greeting and EHLO (default peer.test)")
    parser.add_argument("--tls-chain", help="PEM file: certificate, then its CA")
    parser.add_argument("--tls-key", help="PEM file: private key of the certificate")
    parser.add_argument("--list", action="store_true", help="print the scenario names")
    args = parser.parse_args()
    if args.list:
        print("\n".join(sorted(SCENARIOS)))
        sys.exit(0)
    if not (args.address and args.out and (args.scenario or args.script)):
        parser.error("--address, --out and one of --scenario or --script are required")
    if bool(args.tls_chain) != bool(args.tls_key):
        parser.error("--tls-chain and --tls-key must be given together")
    if args.scenario in TLS_SCENARIOS and not args.tls_chain:
        parser.error("scenario %s needs --tls-chain and --tls-key" % args.scenario)
    return args


def main():
    args = parse_args()
    args.steps = parse_script(args.script) if args.script else None
    if args.steps and any(verb == "starttls" for _, verb, _ in args.steps) \
            and not args.tls_chain:
        raise SystemExit("script_mx: %s has a starttls step; give --tls-chain and --tls-key"
                         % args.script)
    args.tls_context = None
    if args.tls_chain:
        args.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        args.tls_context.load_cert_chain(args.tls_chain, args.tls_key)

    server = Server((args.address, args.port), Handler)
    server.options = args
    server.recorder = Recorder(args.out)
    print("script_mx: listening on %s:%d %s" % (
        args.address, args.port, args.script or args.scenario), file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
