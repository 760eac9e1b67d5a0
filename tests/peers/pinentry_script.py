#!/usr/bin/env python3
"""A scripted pinentry for tests/integ/test_pinentry.c.

Speaks the pinentry side of the Assuan protocol on stdin/stdout, as Debian's
pinentry programs do (greeting, OK/ERR per command, D lines for GETPIN,
percent-escaping), written independently of libassuan so that the broker's
side is checked against a second implementation.

Environment (the broker's, which the test sets when it starts vbrokerd):
  VB_PE_LOG        append one line per event: "start pid=N display=.. wayland=.. term=..",
                   each command with its argument percent-decoded (newlines as \\n),
                   "bye" / "eof" at the end. Answers are never written.
  VB_PE_MODE_FILE  read at start; its first line says how to answer:
                     answer PIN      GETPIN -> PIN; CONFIRM -> OK
                     cancel          GETPIN / CONFIRM -> ERR 83886179 Operation cancelled
                     hang            GETPIN / CONFIRM -> never answer
                     crash           GETPIN / CONFIRM -> die of SIGABRT
                     hold FILE PIN   GETPIN -> wait until FILE exists, then PIN
"""
import os
import signal
import sys
import time

CANCELLED = "ERR 83886179 Operation cancelled <Pinentry>"


def log(text):
    path = os.environ.get("VB_PE_LOG")
    if path:
        with open(path, "a") as f:
            f.write(text + "\n")


def decode(arg):
    out = bytearray()
    raw = arg.encode()
    i = 0
    while i < len(raw):
        if raw[i] == 0x25 and i + 3 <= len(raw):
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "replace")


def encode(data):
    return "".join("%%%02X" % ord(c) if c in "%\r\n" else c for c in data)


def mode():
    path = os.environ.get("VB_PE_MODE_FILE")
    if not path:
        return ["cancel"]
    with open(path) as f:
        return f.readline().split()


def send(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


PARENT = os.getppid()


def orphaned():
    """The broker is gone (and did not end us): a test peer never outlives it."""
    return os.getppid() != PARENT


def answer_secret(how):
    """The reply to GETPIN or CONFIRM (None: send nothing)."""
    kind = how[0]
    if kind == "cancel":
        return CANCELLED
    if kind == "hang":
        while not orphaned():
            time.sleep(0.2)
        sys.exit(5)
    if kind == "crash":
        os.kill(os.getpid(), signal.SIGABRT)
    if kind == "hold":
        while not os.path.exists(how[1]):
            if orphaned():
                sys.exit(5)
            time.sleep(0.01)
        return how[2]
    return how[1] if len(how) > 1 else ""


def main():
    how = mode()
    log("start pid=%d display=%s wayland=%s term=%s" % (
        os.getpid(), os.environ.get("DISPLAY", "-"),
        os.environ.get("WAYLAND_DISPLAY", "-"), os.environ.get("TERM", "-")))
    send("OK Pleased to meet you, process %d" % os.getpid())
    for raw in sys.stdin:
        line = raw.rstrip("\n")
        verb, _, arg = line.partition(" ")
        log("%s %s" % (verb, decode(arg).replace("\n", "\\n")) if arg else verb)
        if verb == "BYE":
            log("bye")
            send("OK closing connection")
            return
        if verb == "GETPIN":
            reply = answer_secret(how)
            if reply.startswith("ERR "):
                send(reply)
            else:
                if reply:
                    send("D " + encode(reply))
                send("OK")
        elif verb == "CONFIRM":
            reply = answer_secret(how)
            send(reply if reply.startswith("ERR ") else "OK")
        else:
            send("OK")
    log("eof")


if __name__ == "__main__":
    main()
