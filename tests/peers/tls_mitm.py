#!/usr/bin/env python3
"""A forwarder on 127.0.0.1 for the channel-binding tests (test code only).

  --mode tcp  relays the bytes of each connection to --target unchanged: a
              port forward the operator runs; TLS stays end to end.
  --mode tls  a man in the middle: terminates the client's TLS with its own
              certificate (--cert/--key, made by the test and signed by a CA
              the client trusts), opens its own TLS to --target, and relays
              the plaintext both ways. Everything a client sends reaches the
              real server and back; only the two TLS connections differ, and
              with them the tls-exporter values the proofs are bound to.
  --mode tls-up  takes plain TCP from a test's hand-made client and opens
              TLS to --target for it: the client speaks the protocol inside
              a TLS connection whose channel binding it does not know (one
              that omits the binding).

  --down-no-ems / --up-no-ems: the TLS connection toward the client / toward
              --target is TLS 1.2 without the extended master secret (RFC
              7627), which has no tls-exporter channel binding (RFC 9266).
              0x1 is OpenSSL 3's SSL_OP_NO_EXTENDED_MASTER_SECRET (checked:
              `openssl s_client` then says "Extended master secret: no").

Once listening it writes its port to --ready-file (written to a temp name,
then renamed: a reader never sees half of it). One thread per direction of
each connection; it runs until killed.
"""
import argparse
import os
import socket
import ssl
import sys
import threading


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (dst, src):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(conn, args, server_ctx, client_ctx):
    host, port = args.target.rsplit(":", 1)
    try:
        up = socket.create_connection((host, int(port)), timeout=10)
        up.settimeout(None)
        if args.mode == "tls":
            conn = server_ctx.wrap_socket(conn, server_side=True)
        if args.mode in ("tls", "tls-up"):
            up = client_ctx.wrap_socket(up, server_hostname=host)
    except (OSError, ssl.SSLError) as e:
        print("tls_mitm: connection failed: %s" % e, file=sys.stderr, flush=True)
        conn.close()
        return
    print("tls_mitm: relaying a connection (%s)" % args.mode, file=sys.stderr, flush=True)
    a = threading.Thread(target=pump, args=(conn, up), daemon=True)
    b = threading.Thread(target=pump, args=(up, conn), daemon=True)
    a.start()
    b.start()
    a.join()
    b.join()
    conn.close()
    up.close()


def no_ems(ctx):
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= 0x1  # SSL_OP_NO_EXTENDED_MASTER_SECRET (OpenSSL 3)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--target", required=True)
    p.add_argument("--mode", choices=("tcp", "tls", "tls-up"), required=True)
    p.add_argument("--down-no-ems", action="store_true")
    p.add_argument("--up-no-ems", action="store_true")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca", help="CA to verify the real server with (default: none)")
    p.add_argument("--client-cert")
    p.add_argument("--client-key")
    p.add_argument("--ready-file", required=True)
    args = p.parse_args()

    server_ctx = client_ctx = None
    if args.mode == "tls":
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        server_ctx.load_cert_chain(args.cert, args.key)
        if args.down_no_ems:
            no_ems(server_ctx)
    if args.mode in ("tls", "tls-up"):
        client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if args.up_no_ems:
            no_ems(client_ctx)
        if args.ca:
            client_ctx.load_verify_locations(args.ca)
        else:
            client_ctx.check_hostname = False
            client_ctx.verify_mode = ssl.CERT_NONE
        if args.client_cert:
            client_ctx.load_cert_chain(args.client_cert, args.client_key)

    lis = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lis.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lis.bind(("127.0.0.1", args.port))
    lis.listen(16)
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % lis.getsockname()[1])
    os.rename(tmp, args.ready_file)
    while True:
        conn, _ = lis.accept()
        threading.Thread(target=serve, args=(conn, args, server_ctx, client_ctx),
                         daemon=True).start()


if __name__ == "__main__":
    main()
