#!/usr/bin/env python3
"""Test SMTP server for the calltrail integration tests (aiosmtpd).

Listens on 127.0.0.1:--port and stores every accepted message in a Maildir:

  MAILDIR/new/<key>              the message exactly as received after DATA
                                 (bytes as sent, CRLF line ends kept, dot-
                                 stuffing removed; nothing is added to it)
  MAILDIR/envelopes/<key>.json   the envelope of that message:
      {"seq": 1, 2, ... (arrival order),
       "mail_from": "a@x", "rcpt_tos": ["b@y", ...],
       "mail_options": [...], "rcpt_options": [...],
       "auth_login": "user" | null,   # who authenticated on the session
       "tls": true | false,           # STARTTLS done / implicit TLS
       "peer": "127.0.0.1"}

The envelope file is written (atomically) after the message file and before
the server answers 250 to DATA, so a reader should treat a message as
complete once its envelope file exists.

Options:
  --port PORT              required (the caller picks a free one)
  --maildir DIR            required, created if missing
  --starttls CERT KEY      offer STARTTLS and require it before MAIL/AUTH
  --tls CERT KEY           implicit TLS (SMTPS) instead of plain TCP
  --auth USER:PASSWORD     require AUTH (PLAIN/LOGIN) before MAIL; wrong
                           credentials get "535 5.7.8". With --starttls or
                           --tls, AUTH is only offered over TLS.

Prints "READY <port>" on stdout once it accepts connections, then runs until
SIGTERM/SIGINT, on which it stops cleanly with exit code 0. Exits with code 3
at once if the port is already in use (the caller picks another).
"""

import argparse
import errno
import json
import logging
import mailbox
import os
import signal
import ssl
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

# Exit code when --port is taken, so the caller can retry with another port.
EXIT_PORT_IN_USE = 3


class MaildirHandler:
    def __init__(self, path):
        self.maildir = mailbox.Maildir(path, create=True)
        self.envelopes = os.path.join(path, "envelopes")
        os.makedirs(self.envelopes, exist_ok=True)
        # Arrival order continues over a restart on the same Maildir.
        self.seq = sum(1 for n in os.listdir(self.envelopes) if n.endswith(".json"))

    async def handle_DATA(self, server, session, envelope):
        key = self.maildir.add(envelope.original_content)
        self.seq += 1
        info = {
            "seq": self.seq,
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
            "auth_login": login_of(session),
            "tls": session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None,
            "peer": session.peer[0] if isinstance(session.peer, tuple) else str(session.peer),
        }
        tmp = os.path.join(self.envelopes, f".{key}.json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(info, f, ensure_ascii=False)
        os.replace(tmp, os.path.join(self.envelopes, f"{key}.json"))
        return "250 Message accepted for delivery"


def login_of(session):
    data = session.auth_data if session.authenticated else None
    if isinstance(data, LoginPassword):
        return data.login.decode("utf-8", "replace")
    return None


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        ):
            return AuthResult(success=True, auth_data=auth_data)
        # handled=False: aiosmtpd answers "535 5.7.8 Authentication
        # credentials invalid" itself.
        return AuthResult(success=False, handled=False)


def tls_context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--maildir", required=True)
    ap.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--auth", metavar="USER:PASSWORD")
    args = ap.parse_args()
    # The session log (connections, commands, AUTH failures) goes to stderr,
    # which the Rust harness keeps in a log file and shows when a test fails.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    # Plain-text AUTH is deliberate here (see --auth); don't warn about it.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    if args.starttls and args.tls:
        ap.error("--starttls and --tls exclude each other")

    server_kwargs = {"enable_SMTPUTF8": True}
    controller_kwargs = {}
    if args.starttls:
        server_kwargs["tls_context"] = tls_context(*args.starttls)
        server_kwargs["require_starttls"] = True
    if args.tls:
        controller_kwargs["ssl_context"] = tls_context(*args.tls)
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep:
            ap.error("--auth wants USER:PASSWORD")
        server_kwargs["authenticator"] = Authenticator(user, password)
        server_kwargs["auth_required"] = True
        # aiosmtpd refuses AUTH on a clear-text session by default; only keep
        # that when TLS is on offer, so plain-text AUTH can be tested too.
        server_kwargs["auth_require_tls"] = bool(args.starttls)

    controller = Controller(
        MaildirHandler(args.maildir),
        hostname="127.0.0.1",
        port=args.port,
        server_kwargs=server_kwargs,
        **controller_kwargs,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        controller.start()
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            print(f"smtp_server: port {args.port} is in use", file=sys.stderr)
            return EXIT_PORT_IN_USE
        raise
    print(f"READY {args.port}", flush=True)
    try:
        while not stop.wait(3600):
            pass
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
