#!/usr/bin/python3
"""Broken DNS server for the mxlock test network, over UDP and TCP.

  --mode drop     reads every query and never responds, so the client times out
  --mode refuse   responds to every query with RCODE 5 (REFUSED), echoing the
                  question section and copying OPCODE and RD

The test network delegates names to it so that a validating resolver answers
SERVFAIL for them. Each query is logged to standard error and appended to
--query-log as one line: protocol, peer and question name.
"""

import argparse
import asyncio
import logging
import signal
import struct

log = logging.getLogger("dns_peer")

RCODE_REFUSED = 5
HEADER_LENGTH = 12


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True, help="IP address to listen on")
    parser.add_argument("--port", type=int, default=53, help="UDP and TCP port (default 53)")
    parser.add_argument("--mode", required=True, choices=["drop", "refuse"],
                        help="drop: never answer; refuse: answer REFUSED")
    parser.add_argument("--query-log", required=True,
                        help="file that each query is appended to")
    return parser.parse_args()


def question_end(message):
    """Return the offset after the first question, or None if it is malformed."""
    offset = HEADER_LENGTH
    while offset < len(message):
        length = message[offset]
        if length == 0:
            offset += 1 + 4  # root label, then QTYPE and QCLASS
            return offset if offset <= len(message) else None
        if length & 0xC0:
            return None  # a question name never uses compression
        offset += 1 + length
    return None


def question_name(message):
    labels = []
    offset = HEADER_LENGTH
    while offset < len(message) and message[offset] != 0:
        length = message[offset]
        labels.append(message[offset + 1:offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    return ".".join(labels) + "."


def refused_response(query):
    """Build a REFUSED response to QUERY, or None if QUERY cannot be parsed."""
    if len(query) < HEADER_LENGTH:
        return None
    query_id, flags, question_count = struct.unpack("!HHH", query[:6])
    if flags & 0x8000:
        return None  # a response, not a query
    end = question_end(query) if question_count == 1 else None
    question = query[HEADER_LENGTH:end] if end else b""
    # QR set, the OPCODE and RD bits copied from the query, RCODE REFUSED.
    response_flags = 0x8000 | (flags & 0x7900) | RCODE_REFUSED
    header = struct.pack("!HHHHHH", query_id, response_flags,
                         1 if question else 0, 0, 0, 0)
    return header + question


class QueryLog:
    def __init__(self, path):
        self.path = path

    def record(self, protocol, peer, message):
        line = "proto=%s peer=%s:%d name=%s" % (protocol, peer[0], peer[1],
                                                question_name(message))
        log.info("%s", line)
        with open(self.path, "a") as output:
            output.write(line + "\n")


class UdpPeer(asyncio.DatagramProtocol):
    def __init__(self, mode, query_log):
        self.mode = mode
        self.query_log = query_log
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, address):
        self.query_log.record("udp", address, data)
        if self.mode == "refuse":
            response = refused_response(data)
            if response:
                self.transport.sendto(response, address)


async def serve_tcp_client(mode, query_log, reader, writer):
    peer = writer.get_extra_info("peername")
    try:
        while True:
            length = struct.unpack("!H", await reader.readexactly(2))[0]
            query = await reader.readexactly(length)
            query_log.record("tcp", peer, query)
            if mode == "refuse":
                response = refused_response(query)
                if response:
                    writer.write(struct.pack("!H", len(response)) + response)
                    await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(args):
    loop = asyncio.get_running_loop()
    query_log = QueryLog(args.query_log)
    udp_transport, _ = await loop.create_datagram_endpoint(
        lambda: UdpPeer(args.mode, query_log), local_addr=(args.address, args.port))
    tcp_server = await asyncio.start_server(
        lambda reader, writer: serve_tcp_client(args.mode, query_log, reader, writer),
        args.address, args.port, reuse_address=True)

    stop = asyncio.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    log.info("listening on %s:%d udp and tcp, mode=%s", args.address, args.port, args.mode)

    await stop.wait()
    udp_transport.close()
    tcp_server.close()
    log.info("stopped")


def main():
    args = parse_args()
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
