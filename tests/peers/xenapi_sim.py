#!/usr/bin/env python3
"""xenapi_sim.py — a XenAPI host for tests, Python 3 standard library only.

Speaks XenAPI's XML-RPC as a real host does (see ../../../shared/PEERS.md):

- POST / or /RPC2 with a <methodCall>; every answer is a <methodResponse>
  whose single param is a struct with Status first: Success + Value, or
  Failure + ErrorDescription (an array of strings: code, params...). API
  errors are never <fault>.
- Integers travel as bare <value>123</value> (xapi sends int64 as strings);
  --int-form picks another form so clients can be tested against each.
- String values are escaped (& < > "); struct member *names* are written as
  they are, unescaped, as xapi's marshaller does (so a map key such as
  "a<b&c" reaches the client raw and the client must tolerate it).
- session.login_with_password takes 2-4 params (else
  MESSAGE_PARAMETER_COUNT_MISMATCH [method, expected, received]); wrong
  credentials give SESSION_AUTHENTICATION_FAILED [uname, "Authentication
  failure"]; a pool member (--slave-of) answers HOST_IS_SLAVE [master] before
  looking at the password. Session refs are OpaqueRef:<uuid>; unknown,
  logged-out or expired refs give SESSION_INVALID [ref].
- Sessions idle longer than --idle-expiry seconds are destroyed (xapi: 86400),
  at most --max-sessions per user (xapi: 500; the oldest goes first).

Test hooks, none of which ever records a password or a session ref:
  --log FILE           one line per call: method, user where known, Status
                       and error code; plus "session expired"/"session
                       destroyed" lines. Flushed per line.
  --count-logins FILE  rewritten after every login attempt:
                       "ok=N failed=M slave=K\n".
  --listen HOST:PORT   port 0 picks one; either way "listening on HOST:PORT"
                       is printed on stdout (flushed) once the socket listens.
  --tls CERT KEY       HTTPS instead of HTTP.
  --stall METHOD       never answer METHOD (log "METHOD stalled" first), so a
                       test can kill the host in the middle of a call.
  --oversize METHOD    answer METHOD with a 17 MiB string (over a client's
                       bound on responses).
  SIGUSR1              destroy every session at once (as a restarted xapi
                       does: every ref then answers SESSION_INVALID) and log
                       "sessions dropped n=N".
  SIGHUP               read --users again (a password changed on the host;
                       its sessions live on, as xapi's do) and log
                       "users reloaded".

SIGTERM (and SIGINT) exit cleanly with status 0.
"""

import argparse
import http.server
import os
import signal
import socketserver
import ssl
import sys
import threading
import time
import uuid
import xml.parsers.expat
import xmlrpc.client

MAX_REQUEST = 1 << 20  # bytes of request body accepted
NULL_REF = "OpaqueRef:NULL"


def new_ref():
    return "OpaqueRef:" + str(uuid.uuid4())


# ---- XML-RPC encoding, by hand: xmlrpc.client.dumps would escape struct
# names and send ints as <int>, and a real host does neither. -------------

def escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;")
             .replace(">", "&gt;").replace('"', "&quot;"))


class Int:
    """An integer field: encoded in the form --int-form selects (per field
    under 'mixed')."""

    def __init__(self, value, mixed_form="bare"):
        self.value = int(value)
        self.mixed_form = mixed_form


INT_FORMS = ("bare", "string", "int", "i4", "i8", "mixed")


def encode(v, int_form, out):
    if isinstance(v, bool):
        out.append("<value><boolean>%d</boolean></value>" % (1 if v else 0))
    elif isinstance(v, Int):
        form = v.mixed_form if int_form == "mixed" else int_form
        text = str(v.value)
        if form == "bare":
            out.append("<value>%s</value>" % text)
        elif form == "string":
            out.append("<value><string>%s</string></value>" % text)
        else:
            out.append("<value><%s>%s</%s></value>" % (form, text, form))
    elif isinstance(v, int):
        # a real XenAPI int64 is a string; plain ints here are the same
        out.append("<value>%d</value>" % v)
    elif isinstance(v, float):
        out.append("<value><double>%r</double></value>" % v)
    elif isinstance(v, str):
        out.append("<value>%s</value>" % escape(v))
    elif isinstance(v, (list, tuple)):
        out.append("<value><array><data>")
        for item in v:
            encode(item, int_form, out)
        out.append("</data></array></value>")
    elif isinstance(v, dict):
        out.append("<value><struct>")
        for k, item in v.items():
            # names unescaped, as xapi writes them
            out.append("<member><name>%s</name>" % k)
            encode(item, int_form, out)
            out.append("</member>")
        out.append("</struct></value>")
    elif v is None:
        out.append("<value><nil/></value>")
    else:
        raise TypeError("cannot encode %r" % type(v))


def response_xml(result, int_form):
    out = ['<?xml version="1.0"?>\n<methodResponse><params><param>']
    encode(result, int_form, out)
    out.append("</param></params></methodResponse>\n")
    return "".join(out).encode("utf-8")


def success(value):
    return {"Status": "Success", "Value": value}


class ApiError(Exception):
    def __init__(self, code, *params):
        super().__init__(code)
        self.code = code
        self.params = [str(p) for p in params]


def failure(code, params):
    return {"Status": "Failure", "ErrorDescription": [code] + list(params)}


# ---- the host -----------------------------------------------------------


class Host:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.args = args
        self.users = load_users(args.users)
        self.sessions = {}  # ref -> {"user", "created", "last"}
        self.counts = {"ok": 0, "failed": 0, "slave": 0}
        self.log_file = open(args.log, "a", encoding="utf-8") if args.log else None
        self.host_ref = new_ref()
        self.pool_ref = new_ref()
        self.host_uuid = str(uuid.uuid4())
        self.next_domid = 3
        self.vms = initial_vms(self.host_ref, args.hostname)
        self.write_counts()

    # -- hooks
    def log(self, line):
        if self.log_file:
            self.log_file.write(line + "\n")
            self.log_file.flush()

    def write_counts(self):
        if not self.args.count_logins:
            return
        tmp = self.args.count_logins + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("ok=%d failed=%d slave=%d\n" % (
                self.counts["ok"], self.counts["failed"], self.counts["slave"]))
        os.replace(tmp, self.args.count_logins)

    # -- sessions (called with self.lock held)
    def expire_idle(self, now):
        limit = self.args.idle_expiry
        for ref, s in list(self.sessions.items()):
            if now - s["last"] > limit:
                del self.sessions[ref]
                self.log("session expired user=%s" % s["user"])

    def session_user(self, ref):
        now = time.monotonic()
        self.expire_idle(now)
        s = self.sessions.get(ref) if isinstance(ref, str) else None
        if s is None:
            raise ApiError("SESSION_INVALID", ref)
        s["last"] = now
        return s["user"]

    def login(self, params):
        if not 2 <= len(params) <= 4:
            raise ApiError("MESSAGE_PARAMETER_COUNT_MISMATCH",
                           "session.login_with_password", 2, len(params))
        uname, pwd = str(params[0]), params[1]
        if self.args.slave_of:
            self.counts["slave"] += 1
            self.write_counts()
            raise ApiError("HOST_IS_SLAVE", self.args.slave_of)
        if self.users.get(uname) != pwd:
            self.counts["failed"] += 1
            self.write_counts()
            raise ApiError("SESSION_AUTHENTICATION_FAILED", uname,
                           "Authentication failure")
        now = time.monotonic()
        self.expire_idle(now)
        mine = sorted((s["created"], r) for r, s in self.sessions.items()
                      if s["user"] == uname)
        while len(mine) >= self.args.max_sessions:
            _, oldest = mine.pop(0)
            del self.sessions[oldest]
            self.log("session destroyed (max-sessions) user=%s" % uname)
        ref = new_ref()
        self.sessions[ref] = {"user": uname, "created": now, "last": now}
        self.counts["ok"] += 1
        self.write_counts()
        return ref

    def drop_sessions(self):
        with self.lock:
            n = len(self.sessions)
            self.sessions.clear()
            self.log("sessions dropped n=%d" % n)

    def reload_users(self):
        users = load_users(self.args.users)
        with self.lock:
            self.users = users
            self.log("users reloaded")

    def reaper(self):
        """Destroy idle sessions as they expire, so a test can wait for the
        'session expired' log line instead of sleeping."""
        step = min(0.05, self.args.idle_expiry / 4)
        while True:
            time.sleep(step)
            with self.lock:
                self.expire_idle(time.monotonic())

    # -- objects
    def vm(self, ref):
        vm = self.vms.get(ref) if isinstance(ref, str) else None
        if vm is None:
            raise ApiError("HANDLE_INVALID", "VM", ref)
        return vm

    def host_record(self):
        return {
            "uuid": self.host_uuid,
            "name_label": self.args.hostname,
            "name_description": "vbroker XenAPI simulator",
            "hostname": self.args.hostname + ".lab",
            "address": self.args.address,
            "API_version_major": Int(2, "string"),
            "API_version_minor": Int(21, "i4"),
            "API_version_vendor": "XenSource",
            "enabled": True,
            "resident_VMs": [r for r, v in self.vms.items()
                             if v["power_state"] in ("Running", "Paused")],
            "other_config": {},
        }


def load_users(path):
    users = {}
    if not path:
        return users
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            user, sep, pwd = line.partition(":")
            if sep:
                users[user] = pwd
    return users


def vm_record(name, state, mem_mib, vcpus, domid, host_ref, template=False,
              snapshot=False, control=False, other=None):
    running = state in ("Running", "Paused")
    return {
        "uuid": str(uuid.uuid4()),
        "name_label": name,
        "name_description": "",
        "power_state": state,
        "is_a_template": template,
        "is_a_snapshot": snapshot,
        "is_control_domain": control,
        "is_default_template": template and not snapshot,
        "memory_static_max": Int(mem_mib * 1024 * 1024, "bare"),
        "memory_dynamic_max": Int(mem_mib * 1024 * 1024, "bare"),
        "memory_static_min": Int(mem_mib * 1024 * 1024 // 2, "bare"),
        "VCPUs_max": Int(vcpus, "int"),
        "VCPUs_at_startup": Int(vcpus, "i4"),
        "domid": Int(domid, "i8"),
        "resident_on": host_ref if running else NULL_REF,
        "allowed_operations": [],
        "snapshots": [],
        "other_config": other or {},
        "HVM_boot_policy": "BIOS order",
    }


def initial_vms(host_ref, hostname):
    vms = [
        vm_record("Control domain on host: " + hostname, "Running", 4096, 8, 0,
                  host_ref, control=True),
        vm_record("web", "Running", 2048, 2, 1, host_ref,
                  other={"folder": "/lab", "a<b&c>": "raw name", "quote\"d": "x"}),
        vm_record("db", "Halted", 4096, 4, -1, host_ref),
        vm_record("batch", "Paused", 1024, 1, 2, host_ref),
        vm_record("archive", "Suspended", 512, 1, -1, host_ref),
        vm_record('R&D <lab> "one"', "Halted", 256, 1, -1, host_ref),
        vm_record("Debian Bookworm 12", "Halted", 1024, 1, -1, host_ref,
                  template=True),
        vm_record("web snapshot 1", "Halted", 2048, 2, -1, host_ref,
                  snapshot=True),
        vm_record("db template snapshot", "Halted", 4096, 4, -1, host_ref,
                  template=True, snapshot=True),
    ]
    return {new_ref(): v for v in vms}


# ---- methods: name -> (param count, handler(host, user, params)); every
# handler runs with host.lock held and params[0] a valid session ----------

def m_logout(host, user, p):
    host.sessions.pop(p[0], None)
    return ""


def m_get_this_host(host, user, p):
    if p[1] != p[0]:
        host.session_user(p[1])
    return host.host_ref


def m_host_get_all(host, user, p):
    return [host.host_ref]


def m_pool_get_all(host, user, p):
    return [host.pool_ref]


def check_host(host, ref):
    if ref != host.host_ref:
        raise ApiError("HANDLE_INVALID", "host", ref)


def m_api_major(host, user, p):
    check_host(host, p[1])
    return Int(2, "bare")


def m_api_minor(host, user, p):
    check_host(host, p[1])
    return Int(21, "bare")


def m_host_get_record(host, user, p):
    check_host(host, p[1])
    return host.host_record()


def m_host_get_hostname(host, user, p):
    check_host(host, p[1])
    return host.args.hostname + ".lab"


def m_vm_get_all(host, user, p):
    return list(host.vms)


def m_vm_get_all_records(host, user, p):
    return dict(host.vms)


def m_vm_get_record(host, user, p):
    return host.vm(p[1])


def m_vm_get_by_name_label(host, user, p):
    return [r for r, v in host.vms.items() if v["name_label"] == p[1]]


def m_vm_get_power_state(host, user, p):
    return host.vm(p[1])["power_state"]


def startable(vm, ref):
    if vm["is_a_template"] or vm["is_a_snapshot"]:
        raise ApiError("VM_IS_TEMPLATE", ref)
    if vm["is_control_domain"]:
        raise ApiError("OPERATION_NOT_ALLOWED",
                       "This operation is not allowed on the control domain")


def m_vm_start(host, user, p):
    ref = p[1]
    vm = host.vm(ref)
    startable(vm, ref)
    if vm["power_state"] != "Halted":
        raise ApiError("VM_BAD_POWER_STATE", ref, "halted", vm["power_state"].lower())
    paused = bool(p[2])
    vm["power_state"] = "Paused" if paused else "Running"
    vm["domid"] = Int(host.next_domid, vm["domid"].mixed_form)
    vm["resident_on"] = host.host_ref
    host.next_domid += 1
    return ""


def m_vm_clean_shutdown(host, user, p):
    ref = p[1]
    vm = host.vm(ref)
    startable(vm, ref)
    if vm["power_state"] != "Running":
        raise ApiError("VM_BAD_POWER_STATE", ref, "running", vm["power_state"].lower())
    vm["power_state"] = "Halted"
    vm["domid"] = Int(-1, vm["domid"].mixed_form)
    vm["resident_on"] = NULL_REF
    return ""


METHODS = {
    "session.logout": (1, m_logout),
    "session.get_this_host": (2, m_get_this_host),
    "host.get_all": (1, m_host_get_all),
    "pool.get_all": (1, m_pool_get_all),
    "host.get_API_version_major": (2, m_api_major),
    "host.get_API_version_minor": (2, m_api_minor),
    "host.get_record": (2, m_host_get_record),
    "host.get_hostname": (2, m_host_get_hostname),
    "VM.get_all": (1, m_vm_get_all),
    "VM.get_all_records": (1, m_vm_get_all_records),
    "VM.get_record": (2, m_vm_get_record),
    "VM.get_by_name_label": (2, m_vm_get_by_name_label),
    "VM.get_power_state": (2, m_vm_get_power_state),
    "VM.start": (4, m_vm_start),
    "VM.clean_shutdown": (2, m_vm_clean_shutdown),
}


def dispatch(host, method, params):
    """The result struct for one call, and a log line (never a secret)."""
    user = "-"
    if method == host.args.stall:
        host.log("%s stalled" % method)
        while True:
            time.sleep(3600)
    if method == host.args.oversize:
        return success("x" * (17 << 20)), "%s oversized" % method
    try:
        if method == "session.login_with_password":
            user = str(params[0]) if params else "-"
            with host.lock:
                ref = host.login(params)
            # the originator (4th param) is public: tests check it
            origin = str(params[3]) if len(params) >= 4 else "-"
            return success(ref), "%s user=%s originator=%s Success" % (method, user, origin)
        if method not in METHODS:
            raise ApiError("MESSAGE_METHOD_UNKNOWN", method)

        count, fn = METHODS[method]
        if len(params) != count:
            raise ApiError("MESSAGE_PARAMETER_COUNT_MISMATCH", method, count, len(params))
        with host.lock:
            user = host.session_user(params[0])
            value = fn(host, user, params)
        return success(value), "%s user=%s Success" % (method, user)
    except ApiError as e:
        # SESSION_INVALID's param is a ref: never log it
        shown = "" if e.code in ("SESSION_INVALID",) else " " + " ".join(
            p for p in e.params if not p.startswith("OpaqueRef:"))
        return failure(e.code, e.params), "%s user=%s Failure %s%s" % (
            method, user, e.code, shown.rstrip())


# ---- HTTP ---------------------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without TCP_NODELAY the body
    # waits for the client's delayed ACK (~40 ms per call), which no real
    # xapi (one buffered write) makes a client pay
    disable_nagle_algorithm = True
    server_version = "xapi"
    sys_version = ""

    def setup(self):
        super().setup()
        self.connection.settimeout(30)

    def log_message(self, fmt, *args):  # no access log on stderr
        pass

    def reply(self, code, body, ctype="text/xml"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.reply(404, b"not found\n", "text/plain")

    def do_POST(self):
        host = self.server.host
        if self.path not in ("/", "/RPC2"):
            self.reply(404, b"not found\n", "text/plain")
            return
        try:
            length = int(self.headers.get("Content-Length", "-1"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_REQUEST:
            self.reply(413 if length > MAX_REQUEST else 411, b"bad length\n", "text/plain")
            self.close_connection = True
            return
        body = self.rfile.read(length)
        try:
            params, method = xmlrpc.client.loads(body, use_builtin_types=True)
        except (xml.parsers.expat.ExpatError, ValueError, TypeError) as e:
            result = failure("XMLRPC_UNMARSHAL_FAILURE", [type(e).__name__])
            host.log("(unparsable request) Failure XMLRPC_UNMARSHAL_FAILURE")
        else:
            result, line = dispatch(host, method or "", list(params))
            host.log(line)
        self.reply(200, response_xml(result, host.args.int_form))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls = None

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.tls:
            # handshake in the handler thread, so a slow client blocks nobody
            sock = self.tls.wrap_socket(sock, server_side=True,
                                        do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request, client_address):
        if self.tls:
            try:
                request.settimeout(10)
                request.do_handshake()
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # a client that went away is not news


def parse_listen(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError("expected HOST:PORT")
    return host.strip("[]"), int(port)


def main():
    ap = argparse.ArgumentParser(description="XenAPI simulator for vbroker tests")
    ap.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 0))
    ap.add_argument("--users", help="file of user:password lines")
    ap.add_argument("--slave-of", metavar="ADDRESS",
                    help="be a pool member: answer logins with HOST_IS_SLAVE [ADDRESS]")
    ap.add_argument("--idle-expiry", type=float, default=86400.0, metavar="SECONDS")
    ap.add_argument("--max-sessions", type=int, default=500)
    ap.add_argument("--hostname", default="xenhost1")
    ap.add_argument("--int-form", choices=INT_FORMS, default="bare")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--log", metavar="FILE")
    ap.add_argument("--count-logins", metavar="FILE")
    ap.add_argument("--stall", metavar="METHOD")
    ap.add_argument("--oversize", metavar="METHOD")
    args = ap.parse_args()
    args.address = args.listen[0]

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    host = Host(args)
    # the handler runs on the main thread, which never holds host.lock
    signal.signal(signal.SIGUSR1, lambda signum, frame: host.drop_sessions())
    signal.signal(signal.SIGHUP, lambda signum, frame: host.reload_users())
    server = Server(args.listen, Handler)
    server.host = host
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        server.tls = ctx
    threading.Thread(target=host.reaper, daemon=True).start()
    bound_host, bound_port = server.server_address[:2]
    print("listening on %s:%d" % (bound_host, bound_port), flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
