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
    parser.add_argument("--address", required=True, help="IP address to listen on")
    parser.add_argument("--port", type=int, default=25, help="TCP port (default 25)")
    parser.add_argument("--name", required=True,
                        help="server name; messages go to MAILDIR/NAME/")
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
    if bool(args.tls_chain) != bool(args.tls_key):
        parser.error("--tls-chain and --tls-key must be given together")
    return args


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


async def serve(args):
    loop = asyncio.get_running_loop()
    handler = StoringHandler(args.maildir, args.name)
    tls_context = None
    if args.tls_chain:
        tls_context = make_tls_context(args.tls_chain, args.tls_key,
                                       args.tls_max_version)

    def new_session():
        return SMTP(handler, data_size_limit=args.size, enable_SMTPUTF8=True,
                    decode_data=False, hostname=args.hostname or args.name,
                    ident="mxlock test MX", tls_context=tls_context,
                    require_starttls=False, loop=loop)

    server = await loop.create_server(new_session, args.address, args.port,
                                      reuse_address=True)
    stop = asyncio.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    log.info("listening on %s:%d name=%s starttls=%s", args.address, args.port,
             args.name, "yes" if tls_context else "no")

    await stop.wait()
    server.close()
    # Open client connections must not keep the process alive after SIGTERM.
    try:
        await asyncio.wait_for(server.wait_closed(), timeout=1)
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
