#!/usr/bin/python3
"""Receiving MX host for the mxlock test network, built on aiosmtpd.

Stores every accepted message byte for byte (after SMTP dot-unstuffing) as
MAILDIR/NAME/N.eml, then writes N.json beside it with the envelope, the peer
address, the TLS version and the SNI name. The .json file appears last, so a
test waits for it. STARTTLS is offered when --tls-chain and --tls-key are
given, and plaintext delivery is allowed too.

Test rules, keyed by the recipient's local part (case-insensitive prefix):
  reject...      RCPT gets 550 5.1.1
  defer...       RCPT gets 450 4.2.1
  datareject...  the final DATA reply is 554 5.6.0 (message not stored)
  datadefer...   the final DATA reply is 451 4.3.0 (message not stored)

With --hosts FILE, one process serves many MX hosts, one per line of FILE:
"NAME ADDRESS PORT HOSTNAME CHAIN KEY", where CHAIN and KEY are "-" for a host
without STARTTLS; blank lines and lines starting with "#" are skipped. Each
host stores its mail in MAILDIR/NAME/ as above.

Runs only under /usr/bin/python3, where python3-aiosmtpd is installed. It
never drops privileges, so root can bind port 25.
"""

import argparse
import asyncio
import datetime
import json
import logging
import os
import signal
import ssl

from aiosmtpd.smtp import SMTP

DEFAULT_MAX_MESSAGE_SIZE = 200 * 1024 * 1024

log = logging.getLogger("mx")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", help="IP address to listen on")
    parser.add_argument("--port", type=int, default=25, help="TCP port (default 25)")
    parser.add_argument("--name", help="server name; messages go to MAILDIR/NAME/")
    parser.add_argument("--hosts", metavar="FILE",
                        help="serve every host listed in FILE instead of one "
                             "(see the description); replaces --address, --port, "
                             "--name, --hostname, --tls-chain and --tls-key")
    parser.add_argument("--hostname",
                        help="host name in the greeting and EHLO reply (default: NAME)")
    parser.add_argument("--maildir", required=True,
                        help="parent folder of the per-server mail folders")
    parser.add_argument("--tls-chain", help="PEM file: certificate, then its CA")
    parser.add_argument("--tls-key", help="PEM file: private key of the certificate")
    parser.add_argument("--tls-max-version", choices=["1.2", "1.3"],
                        help="highest TLS version offered (default: 1.3)")
    parser.add_argument("--size", type=int, default=DEFAULT_MAX_MESSAGE_SIZE,
                        help="maximum message size in bytes (default 200 MiB)")
    args = parser.parse_args()
    if args.hosts:
        if args.address or args.name or args.hostname or args.tls_chain or args.tls_key:
            parser.error("--hosts replaces --address, --name, --hostname, "
                         "--tls-chain and --tls-key")
    elif not (args.address and args.name):
        parser.error("--address and --name are required unless --hosts is given")
    if bool(args.tls_chain) != bool(args.tls_key):
        parser.error("--tls-chain and --tls-key must be given together")
    return args


class HostSpec:
    """One MX host to serve: where it listens and what it presents."""

    def __init__(self, name, address, port, hostname, tls_chain, tls_key):
        self.name = name
        self.address = address
        self.port = port
        self.hostname = hostname
        self.tls_chain = tls_chain
        self.tls_key = tls_key


def read_hosts_file(path):
    """Parse a --hosts file into HostSpec objects; exit with the line on error."""
    hosts = []
    with open(path, encoding="utf-8") as source:
        for number, line in enumerate(source, 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) != 6 or not fields[2].isdigit():
                raise SystemExit("%s:%d: expected NAME ADDRESS PORT HOSTNAME CHAIN KEY, "
                                 "got %r" % (path, number, line.strip()))
            name, address, port, hostname, chain, key = fields
            if (chain == "-") != (key == "-"):
                raise SystemExit("%s:%d: CHAIN and KEY must both be files or both be '-'"
                                 % (path, number))
            hosts.append(HostSpec(name, address, int(port), hostname,
                                  None if chain == "-" else chain,
                                  None if key == "-" else key))
    if not hosts:
        raise SystemExit("%s: no hosts listed" % path)
    return hosts


def make_tls_context(chain_file, key_file, max_version):
    """Build a server TLS context that records the client's SNI name."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain_file, key_file)
    if max_version == "1.2":
        context.maximum_version = ssl.TLSVersion.TLSv1_2

    def record_sni(ssl_object, server_name, _context):
        ssl_object.mxlock_sni = server_name

    context.sni_callback = record_sni
    return context


def write_atomically(path, data):
    """Write data to path through a temporary file, so readers never see half."""
    temporary = path + ".tmp"
    with open(temporary, "wb") as output:
        output.write(data)
    os.replace(temporary, path)


def highest_message_number(folder):
    numbers = [int(entry.split(".")[0]) for entry in os.listdir(folder)
               if entry.endswith(".json") and entry.split(".")[0].isdigit()]
    return max(numbers, default=0)


def tls_summary(session):
    """Return (version, cipher, sni) of the session, all None in plaintext."""
    if session.ssl is None:
        return None, None, None
    ssl_object = session.ssl.get("ssl_object")
    if ssl_object is None:
        return None, None, None
    cipher = ssl_object.cipher()
    return (ssl_object.version(), cipher[0] if cipher else None,
            getattr(ssl_object, "mxlock_sni", None))


def rule_for(recipients, prefix):
    return any(address.rpartition("@")[0].lower().startswith(prefix)
               for address in recipients)


class StoringHandler:
    """aiosmtpd handler that applies the test rules and stores messages."""

    def __init__(self, maildir, name):
        self.name = name
        self.folder = os.path.join(maildir, name)
        os.makedirs(self.folder, exist_ok=True)
        self.next_number = highest_message_number(self.folder) + 1

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local_part = address.rpartition("@")[0].lower()
        if local_part.startswith("reject"):
            return "550 5.1.1 Recipient rejected by test rule"
        if local_part.startswith("defer"):
            return "450 4.2.1 Recipient deferred by test rule"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if rule_for(envelope.rcpt_tos, "datareject"):
            return "554 5.6.0 Message rejected by test rule"
        if rule_for(envelope.rcpt_tos, "datadefer"):
            return "451 4.3.0 Message deferred by test rule"

        number = self.next_number
        self.next_number += 1
        self.store(number, session, envelope)
        return "250 2.0.0 OK stored as %s/%d" % (self.name, number)

    def store(self, number, session, envelope):
        content = envelope.original_content
        tls_version, tls_cipher, sni = tls_summary(session)
        peer = session.peer or (None, None)
        record = {
            "server": self.name,
            "number": number,
            "received_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "peer": peer[0],
            "peer_port": peer[1],
            "helo": session.host_name,
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "rcpt_options": envelope.rcpt_options,
            "size": len(content),
            "tls": tls_version,
            "tls_cipher": tls_cipher,
            "sni": sni,
        }
        base = os.path.join(self.folder, str(number))
        write_atomically(base + ".eml", content)
        write_atomically(base + ".json",
                         (json.dumps(record, indent=2) + "\n").encode())
        log.info("stored %s/%d from=<%s> to=%s size=%d tls=%s sni=%s",
                 self.name, number, envelope.mail_from,
                 ",".join(envelope.rcpt_tos), len(content), tls_version, sni)


async def start_host(args, host):
    """Start listening for one MX host and return its asyncio server."""
    loop = asyncio.get_running_loop()
    handler = StoringHandler(args.maildir, host.name)
    tls_context = None
    if host.tls_chain:
        tls_context = make_tls_context(host.tls_chain, host.tls_key,
                                       args.tls_max_version)

    def new_session():
        return SMTP(handler, data_size_limit=args.size, enable_SMTPUTF8=True,
                    decode_data=False, hostname=host.hostname or host.name,
                    ident="mxlock test MX", tls_context=tls_context,
                    require_starttls=False, loop=loop)

    server = await loop.create_server(new_session, host.address, host.port,
                                      reuse_address=True)
    log.info("listening on %s:%d name=%s starttls=%s", host.address, host.port,
             host.name, "yes" if tls_context else "no")
    return server


async def serve(args):
    loop = asyncio.get_running_loop()
    if args.hosts:
        hosts = read_hosts_file(args.hosts)
    else:
        hosts = [HostSpec(args.name, args.address, args.port, args.hostname,
                          args.tls_chain, args.tls_key)]
    servers = [await start_host(args, host) for host in hosts]

    stop = asyncio.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)

    await stop.wait()
    for server in servers:
        server.close()
    # Open client connections must not keep the process alive after SIGTERM.
    try:
        await asyncio.wait_for(
            asyncio.gather(*(server.wait_closed() for server in servers)), timeout=1)
    except asyncio.TimeoutError:
        pass
    log.info("stopped")


def main():
    args = parse_args()
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
