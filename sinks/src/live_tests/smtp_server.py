"""Test SMTP server for calltrail-sinks' live tests (aiosmtpd).

usage: smtp_server.py MODE PORT OUTDIR [CERT KEY]
MODE: plain | starttls | tls. Every accepted message is stored as
OUTDIR/NNNN.eml plus OUTDIR/NNNN.json (envelope, TLS/auth state and the
decoded headers). RCPT tempfail@... gets 451, reject@... gets 550. AUTH
accepts alerts / s3cret.
"""

import email
import email.policy
import json
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

mode, port, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class Handler:
    def __init__(self):
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("tempfail@"):
            return "451 4.3.0 try again later"
        if address.startswith("reject@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(outdir, "%04d" % self.count)
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "login": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
            "subject": str(parsed["Subject"]),
            "from": str(parsed["From"]),
            "to": str(parsed["To"]),
            "message_id": str(parsed["Message-ID"]),
            "bcc": parsed["Bcc"] is not None,
            "body": parsed.get_content(),
        }
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 2.0.0 queued"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"alerts"
        and auth_data.password == b"s3cret"
    )
    if ok:
        return AuthResult(success=True, auth_data=auth_data)
    # handled=False: aiosmtpd answers "535 5.7.8 Authentication credentials
    # invalid" itself (with handled=True it would answer nothing).
    return AuthResult(success=False, handled=False)


kwargs = {"authenticator": authenticator, "auth_require_tls": False}
if mode in ("starttls", "tls"):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    if mode == "starttls":
        kwargs.update(tls_context=ctx, require_starttls=True)
    else:
        kwargs.update(ssl_context=ctx)

controller = Controller(Handler(), hostname="127.0.0.1", port=port, **kwargs)
controller.start()
print("READY", flush=True)
# Exit when the test closes our stdin (or kills us).
sys.stdin.read()
controller.stop()
