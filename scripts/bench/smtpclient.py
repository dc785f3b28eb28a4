"""Plaintext SMTP clients for the benchmark: latency samples and idle sessions.

latency: sends COUNT messages one after another, each on a new connection,
and prints the p50, p99 and mean time from connect to the reply to the end
of DATA, in microseconds. With --sink-pid and --sink-stats it also waits,
before the next message, until the benchmark's sink has counted the
message, and prints the p50 and p99 of that time too (delivered_p50_us,
delivered_p99_us): for a relay that queues, the reply to the end of DATA
only means the message is on its disk.

idle: opens COUNT sessions and leaves each after EHLO (ehlo), or after
MAIL and RCPT (rcpt, so that a relay opens its upstream session). It then
prints "ready N", keeps the sessions open until a line or EOF arrives on
standard input, and closes them with QUIT.
"""

import argparse
import os
import signal
import socket
import sys
import time


class SmtpError(Exception):
    pass


class Session:
    def __init__(self, host, port, timeout=30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def reply(self, expected):
        """Read one reply, possibly multi-line, and check its code."""
        while True:
            while b"\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise SmtpError(f"connection closed while waiting for {expected}")
                self.buf += data
            line, self.buf = self.buf.split(b"\n", 1)
            if len(line) < 4 or line[3:4] != b"-":
                break
        if not line.startswith(expected.encode()):
            raise SmtpError(f"expected {expected}, got {line.decode(errors='replace').strip()}")

    def command(self, text, expected):
        self.sock.sendall(text.encode() + b"\r\n")
        self.reply(expected)

    def close(self):
        self.sock.close()


def make_body(size):
    line = b"x" * 76 + b"\r\n"
    body = b"Subject: bench\r\n\r\n" + line * (size // len(line) + 1)
    return body + b".\r\n"


class SinkCounter:
    """The benchmark sink's message counter, read through its stats file."""

    # How long one message may take to reach the sink through a queue.
    TIMEOUT = 60.0

    def __init__(self, pid, path):
        self.pid = pid
        self.path = path

    def messages(self):
        """Ask the sink (SIGUSR1) to rewrite its stats file and return its count."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                with open(self.path) as f:
                    text = f.read()
            except FileNotFoundError:
                text = ""
            if text.endswith("\n"):
                fields = dict(item.split("=", 1) for item in text.split())
                return int(fields["messages"])
            time.sleep(0.0002)
        raise SmtpError(f"the sink (PID {self.pid}) did not write {self.path} within 5 s")

    def wait_for(self, count):
        """Poll until the sink has counted COUNT messages in all."""
        deadline = time.monotonic() + self.TIMEOUT
        while self.messages() < count:
            if time.monotonic() > deadline:
                raise SmtpError(f"the sink did not receive message {count} within "
                                f"{self.TIMEOUT:.0f} s")
            time.sleep(0.0005)


def send_message(args, body, sink=None, sink_count=0):
    """Send one message; return the seconds to the 250 after DATA and, when
    SINK is given, to the moment the sink counted SINK_COUNT messages."""
    start = time.perf_counter()
    session = Session(args.host, args.port)
    delivered = None
    try:
        session.reply("220")
        session.command("EHLO client.bench.test", "250")
        session.command("MAIL FROM:<bench@client.bench.test>", "250")
        session.command(f"RCPT TO:<{args.rcpt}>", "250")
        session.command("DATA", "354")
        session.sock.sendall(body)
        session.reply("250")
        elapsed = time.perf_counter() - start
        if sink is not None:
            sink.wait_for(sink_count)
            delivered = time.perf_counter() - start
        session.command("QUIT", "221")
    finally:
        session.close()
    return elapsed, delivered


def percentile(sorted_values, fraction):
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def run_latency(args):
    body = make_body(args.size)
    sink = None
    base = 0
    if args.sink_pid is not None:
        sink = SinkCounter(args.sink_pid, args.sink_stats)
        base = sink.messages()
    results = [send_message(args, body, sink, base + i + 1) for i in range(args.count)]
    samples = sorted(accepted for accepted, _ in results)
    p50 = percentile(samples, 0.50) * 1e6
    p99 = percentile(samples, 0.99) * 1e6
    mean = sum(samples) / len(samples) * 1e6
    line = f"count={len(samples)} p50_us={p50:.0f} p99_us={p99:.0f} mean_us={mean:.0f}"
    if sink is not None:
        delivered = sorted(d for _, d in results)
        line += (f" delivered_p50_us={percentile(delivered, 0.50) * 1e6:.0f}"
                 f" delivered_p99_us={percentile(delivered, 0.99) * 1e6:.0f}")
    print(line)


def open_idle(args):
    session = Session(args.host, args.port, timeout=60.0)
    session.reply("220")
    session.command("EHLO client.bench.test", "250")
    if args.hold == "rcpt":
        session.command("MAIL FROM:<bench@client.bench.test>", "250")
        session.command(f"RCPT TO:<{args.rcpt}>", "250")
    return session


def run_idle(args):
    sessions = []
    try:
        for _ in range(args.count):
            sessions.append(open_idle(args))
        print(f"ready {len(sessions)}", flush=True)
        sys.stdin.readline()
    finally:
        for session in sessions:
            try:
                session.sock.sendall(b"QUIT\r\n")
            except OSError:
                pass
            session.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["latency", "idle"])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=25)
    parser.add_argument("--rcpt", required=True, help="recipient address")
    parser.add_argument("--count", type=int, required=True,
                        help="messages (latency) or sessions (idle)")
    parser.add_argument("--size", type=int, default=1024, help="message body bytes (latency)")
    parser.add_argument("--sink-pid", type=int,
                        help="PID of the benchmark sink, to time delivery to it (latency)")
    parser.add_argument("--sink-stats", help="the sink's stats file (-s), with --sink-pid")
    parser.add_argument("--hold", choices=["ehlo", "rcpt"], default="ehlo", dest="hold",
                        help="where each idle session stops (idle)")
    args = parser.parse_args()
    if (args.sink_pid is None) != (args.sink_stats is None):
        parser.error("--sink-pid and --sink-stats go together")
    try:
        if args.kind == "latency":
            run_latency(args)
        else:
            run_idle(args)
    except (OSError, SmtpError) as error:
        print(f"smtpclient: {args.kind} via {args.host}:{args.port} failed: {error}",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
