#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Start a server and measure its load time, or probe a running one.

launch: start CMD (its output to --log), write its PID to --pidfile, then send NAME every
10 ms over UDP until an answer with the expected RCODE arrives; print the seconds from the
moment just before the process was created to that answer. The server keeps running (the
caller stops it by PID). Exit 1, after stopping the server, if no correct answer came within
--timeout seconds or if the server died.

query: ask once (retrying for --timeout seconds) and exit 0 if the RCODE is the expected one.
"""
import argparse
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time

RCODES = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5}


def build_query(qid, name, qtype=1):
    wire = b"".join(bytes([len(l)]) + l.encode("ascii") for l in name.rstrip(".").split("."))
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire + b"\0" + \
        struct.pack("!HH", qtype, 1)


def ask(sock, addr, name, wait):
    """One query; the response's RCODE, or None if nothing matching came within wait."""
    qid = random.randrange(65536)
    sock.sendto(build_query(qid, name), addr)
    end = time.monotonic() + wait
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            data = sock.recv(4096)
        except socket.timeout:
            return None
        except ConnectionRefusedError:
            # Nothing listens yet: ICMP port unreachable comes back as an error.
            time.sleep(min(left, wait))
            return None
        if len(data) >= 12:
            rid, flags = struct.unpack("!HH", data[:4])
            if rid == qid and flags & 0x8000:
                return flags & 0xF


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("mode", choices=["launch", "query"])
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--expect", default="NXDOMAIN", choices=list(RCODES) + ["ANY"])
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--pidfile")
    ap.add_argument("--log")
    argv = sys.argv[1:]
    cmd = argv[argv.index("--") + 1:] if "--" in argv else []
    a = ap.parse_args(argv[:len(argv) - len(cmd) - (1 if cmd else 0)])
    a.cmd = cmd

    want = None if a.expect == "ANY" else RCODES[a.expect]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((a.addr, a.port))
    addr = (a.addr, a.port)

    def ok(rc):
        return rc is not None and (want is None or rc == want)

    if a.mode == "query":
        end = time.monotonic() + a.timeout
        while time.monotonic() < end:
            rc = ask(sock, addr, a.name, 0.2)
            if ok(rc):
                return 0
        print(f"probe: {a.name} @{a.addr}:{a.port}: no {a.expect} within {a.timeout} s",
              file=sys.stderr)
        return 1

    if not a.cmd:
        ap.error("launch needs -- CMD...")
    log = open(a.log or os.devnull, "ab")
    t0 = time.monotonic()
    proc = subprocess.Popen(a.cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    if a.pidfile:
        with open(a.pidfile, "w") as f:
            f.write(f"{proc.pid}\n")
    end = t0 + a.timeout
    last = None
    while time.monotonic() < end:
        if proc.poll() is not None:
            print(f"probe: {a.cmd[0]} exited with {proc.returncode} while loading",
                  file=sys.stderr)
            return 1
        last = ask(sock, addr, a.name, 0.01)
        if ok(last):
            print(f"{time.monotonic() - t0:.3f}")
            return 0
    print(f"probe: no {a.expect} for {a.name} within {a.timeout} s (last rcode {last})",
          file=sys.stderr)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return 1


if __name__ == "__main__":
    sys.exit(main())
