# STAND-IN for a Windows host's HTTP.sys/WinRM security layer (Windows cannot run here): pyspnego, not our code, authenticates and seals.
"""
Sits in front of the WS-Management stand-in (test/helpers/wsman-host.ts) the way HTTP.sys sits in
front of WinRM on Windows, with the default listener settings: Negotiate on (NTLM and Kerberos,
accepted by pyspnego — an implementation nobody here wrote), Basic off unless --allow-basic,
AllowUnencrypted=false over HTTP (every body must be multipart/encrypted, [MS-WSMV] 2.2.9.1).

Per TCP connection (as HTTP.sys does), a Negotiate exchange builds a security context; afterwards
each request body is unwrapped with it, forwarded in clear text to the stand-in together with the
authenticated principal (X-Hostflow-Principal, trusted only with the shared X-Hostflow-Proxy-Token),
and the answer is wrapped with the same context. A body that does not verify (tampered, replayed,
out of sequence) gets HTTP 400 and the connection is closed; a failed logon gets 401.

Usage: python wsman-auth-proxy.py '<json config>'  → prints {"port": N} on stdout once listening.
Config: backend_port, token, hostname (SPN host part), allow_basic, cert/key (HTTPS), debug.
NTLM accounts come from NTLM_USER_FILE (written by the stand-in), Kerberos from KRB5_KTNAME.
"""
import base64
import hashlib
import http.client
import json
import re
import socketserver
import ssl
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import os
import threading

import spnego
from spnego._ntlm_raw.crypto import ntowfv1
from spnego.channel_bindings import GssChannelBindings

CFG = json.loads(sys.argv[1])
BOUNDARY = b"Encrypted Boundary"
CERT_HASH = None


def log(*a):
    if CFG.get("debug"):
        print("[wsman-auth-proxy]", *a, file=sys.stderr, flush=True)


_accounts_lock = threading.Lock()


def sync_accounts():
    """NTLM_USER_FILE (smbpasswd format) from the stand-in's accounts, hashed by pyspnego's own NTOWFv1."""
    with _accounts_lock:
        with open(CFG["accounts"]) as fd:
            accounts = json.load(fd)
        lines = ["%s:0:%s:%s:[U]:LCT-00000000" % (a["account"], "0" * 32, ntowfv1(a["password"]).hex().upper()) for a in accounts]
        path = os.environ["NTLM_USER_FILE"]
        with open(path + ".tmp", "w") as fd:
            fd.write("\n".join(lines) + "\n")
        os.replace(path + ".tmp", path)


def frame(protocol: bytes, header: bytes, data: bytes, length: int) -> bytes:
    return (
        b"--" + BOUNDARY + b"\r\n\tContent-Type: " + protocol + b"\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
        + str(length).encode() + b"\r\n--" + BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
        + len(header).to_bytes(4, "little") + header + data + b"--" + BOUNDARY + b"--\r\n"
    )


def unframe(body: bytes):
    m = re.match(rb"--Encrypted Boundary\r\n\tContent-Type: (application/HTTP-(?:SPNEGO|Kerberos)-session-encrypted)\r\n"
                 rb"\tOriginalContent: type=[^;]+;charset=[\w-]+;Length=(\d+)\r\n--Encrypted Boundary\r\n"
                 rb"\tContent-Type: application/octet-stream\r\n", body)
    if not m or not body.endswith(b"--Encrypted Boundary--\r\n"):
        raise ValueError("not a multipart/encrypted WinRM body")
    rest = body[m.end():-len(b"--Encrypted Boundary--\r\n")]
    hlen = int.from_bytes(rest[:4], "little")
    return m.group(1), int(m.group(2)), rest[4:4 + hlen], rest[4 + hlen:]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.ctx = None
        self.principal = None

    def log_message(self, fmt, *args):
        log(fmt % args)

    def reply(self, status, headers=None, body=b"", close=False):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def refuse(self):
        h = {"WWW-Authenticate": "Negotiate"}
        self.send_response(401)
        self.send_header("WWW-Authenticate", "Negotiate")
        if CFG.get("allow_basic"):
            self.send_header("WWW-Authenticate", 'Basic realm="WSMAN"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def forward(self, body: bytes, content_type: str, basic=None):
        conn = http.client.HTTPConnection("127.0.0.1", CFG["backend_port"], timeout=120)
        headers = {"Content-Type": content_type, "X-Hostflow-Proxy-Token": CFG["token"]}
        if basic:
            headers["Authorization"] = basic
        else:
            headers["X-Hostflow-Principal"] = self.principal
        conn.request("POST", "/wsman", body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        ctype = r.getheader("Content-Type") or "application/soap+xml;charset=UTF-8"
        conn.close()
        return r.status, ctype, data

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path != "/wsman":
            return self.reply(404)
        extra = {}
        auth = self.headers.get("Authorization")
        if auth:
            scheme, _, tok = auth.partition(" ")
            if scheme.lower() == "basic":
                if not CFG.get("allow_basic"):
                    return self.refuse()
                status, ctype, data = self.forward(body, self.headers.get("Content-Type", ""), basic=auth)
                return self.reply(status, {"Content-Type": ctype} if data else {}, data)
            if scheme.lower() not in ("negotiate", "kerberos"):
                return self.refuse()
            try:
                if self.ctx is None or self.ctx.complete:
                    sync_accounts()
                    bindings = GssChannelBindings(application_data=b"tls-server-end-point:" + CERT_HASH) if CERT_HASH else None
                    self.ctx = spnego.server(hostname=CFG["hostname"], service="HTTP", protocol="negotiate", channel_bindings=bindings)
                    self.principal = None
                out = self.ctx.step(base64.b64decode(tok.strip()))
            except Exception as e:  # a failed logon: Windows answers 401 and keeps no context
                log("logon failed:", type(e).__name__, e)
                self.ctx = None
                return self.refuse()
            if not self.ctx.complete:
                return self.reply(401, {"WWW-Authenticate": "Negotiate " + base64.b64encode(out).decode()})
            self.principal = self.ctx.client_principal
            log("authenticated", self.principal, "with", self.ctx.negotiated_protocol)
            if out:
                extra["WWW-Authenticate"] = "Negotiate " + base64.b64encode(out).decode()
            if not body:
                return self.reply(200, extra)
        if self.ctx is None or not self.ctx.complete:
            return self.refuse()
        ctype = self.headers.get("Content-Type", "")
        if ctype.lower().startswith("multipart/encrypted"):
            try:
                protocol, orig_len, header, data = unframe(body)
                plain = self.ctx.unwrap_winrm(header, data)
                if len(plain) != orig_len:
                    raise ValueError("length mismatch")
            except Exception as e:
                log("unwrap failed:", type(e).__name__, e)
                self.ctx = None
                return self.reply(400, close=True)
            status, rtype, rdata = self.forward(plain, "application/soap+xml;charset=UTF-8")
            if not rdata:
                return self.reply(status, extra)
            w = self.ctx.wrap_winrm(rdata)
            extra["Content-Type"] = 'multipart/encrypted;protocol="%s";boundary="Encrypted Boundary"' % protocol.decode()
            return self.reply(status, extra, frame(protocol, w.header, w.data, len(rdata)))
        if not CFG.get("cert"):
            # AllowUnencrypted=false: a clear-text body over HTTP is refused.
            log("refused an unencrypted body over HTTP")
            return self.refuse()
        status, rtype, rdata = self.forward(body, ctype)
        extra["Content-Type"] = rtype
        return self.reply(status, extra, rdata)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if CFG.get("debug"):
            traceback.print_exc()


def main():
    global CERT_HASH
    srv = Server(("127.0.0.1", 0), Handler)
    if CFG.get("cert"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(CFG["cert"], CFG["key"])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        der = ssl.PEM_cert_to_DER_cert(open(CFG["cert"]).read())
        CERT_HASH = hashlib.sha256(der).digest()
    print(json.dumps({"port": srv.server_address[1]}), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
