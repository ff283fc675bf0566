# SPDX-License-Identifier: MIT
"""A small, strict DNS message reader for the hostile-input and broken-upstream
tests: the header, the question, every record, and the OPT record with its
extended rcode, version, flags and options. It is independent of dnsink's C
parser and of ldns, so a test that reads an answer with it checks the wire
octets themselves. Malformed input raises ValueError."""
import socket
import struct

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
          5: "REFUSED", 16: "BADVERS"}


def read_name(msg, off):
    """(text name, offset after it); pointers are followed backwards only."""
    labels = []
    end = None
    seen = 0
    limit = off
    while True:
        if off >= len(msg):
            raise ValueError("name runs past the end")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise ValueError("cut pointer")
            ptr = (n & 0x3F) << 8 | msg[off + 1]
            if ptr >= limit:
                raise ValueError("forward pointer")
            if end is None:
                end = off + 2
            off = limit = ptr
            continue
        if n & 0xC0:
            raise ValueError("bad label type")
        if n == 0:
            if end is None:
                end = off + 1
            break
        labels.append(msg[off + 1:off + 1 + n].decode("latin-1"))
        seen += n + 1
        if seen > 254:
            raise ValueError("name too long")
        off += n + 1
    return ".".join(labels) + ".", end


class Message:
    """A parsed DNS message; rcode is the full (extended) rcode."""

    def __init__(self, msg):
        if len(msg) < 12:
            raise ValueError("short header")
        self.raw = msg
        (self.id, self.flags, qd, an, ns, ar) = struct.unpack("!HHHHHH", msg[:12])
        self.counts = (qd, an, ns, ar)
        off = 12
        self.qd = []
        for _ in range(qd):
            name, off = read_name(msg, off)
            if off + 4 > len(msg):
                raise ValueError("cut question")
            self.qd.append((name,) + struct.unpack("!HH", msg[off:off + 4]))
            off += 4
        self.sections = []
        self.opt = None
        for i, count in enumerate((an, ns, ar)):
            recs = []
            for _ in range(count):
                name, off = read_name(msg, off)
                if off + 10 > len(msg):
                    raise ValueError("cut record")
                rtype, rclass, ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
                off += 10
                if off + rdlen > len(msg):
                    raise ValueError("cut rdata")
                rdata = msg[off:off + rdlen]
                off += rdlen
                if rtype == 41:
                    if i != 2 or self.opt is not None or name != ".":
                        raise ValueError("misplaced OPT")
                    self.opt = self._opt(rclass, ttl, rdata)
                recs.append((name, rtype, rclass, ttl, rdata))
            self.sections.append(recs)
        if off != len(msg):
            raise ValueError("%d octets after the records" % (len(msg) - off))
        self.rcode = (self.flags & 0x0F) | ((self.opt["ext_rcode"] << 4) if self.opt else 0)

    @staticmethod
    def _opt(udp, ttl, rdata):
        opts = []
        o = 0
        while o < len(rdata):
            if o + 4 > len(rdata):
                raise ValueError("cut option")
            code, n = struct.unpack("!HH", rdata[o:o + 4])
            if o + 4 + n > len(rdata):
                raise ValueError("cut option data")
            opts.append((code, rdata[o + 4:o + 4 + n]))
            o += 4 + n
        return {"udp": udp, "ext_rcode": ttl >> 24, "version": (ttl >> 16) & 0xFF,
                "flags": ttl & 0xFFFF, "options": opts}

    @property
    def qr(self):
        return bool(self.flags & 0x8000)

    @property
    def tc(self):
        return bool(self.flags & 0x0200)

    def rcode_name(self):
        return RCODES.get(self.rcode, "RCODE%d" % self.rcode)

    def addresses(self):
        """Sorted A/AAAA addresses of the answer section, as text."""
        out = []
        for _n, t, _c, _ttl, d in self.sections[0]:
            if t == 1 and len(d) == 4:
                out.append(socket.inet_ntop(socket.AF_INET, d))
            elif t == 28 and len(d) == 16:
                out.append(socket.inet_ntop(socket.AF_INET6, d))
        return sorted(out)


def opt_rr(udp=1232, ext_rcode=0, version=0, flags=0, options=()):
    """An OPT record in wire form; options are (code, bytes) pairs."""
    rdata = b"".join(struct.pack("!HH", c, len(d)) + d for c, d in options)
    ttl = ext_rcode << 24 | version << 16 | flags
    return b"\0" + struct.pack("!HHIH", 41, udp, ttl, len(rdata)) + rdata


def tcp_exchange(port, msg, timeout=3.0, host="127.0.0.1"):
    """Sends one framed message over a new TCP connection; returns the answer or None."""
    s = socket.create_connection((host, port), timeout)
    try:
        s.settimeout(timeout)
        s.sendall(struct.pack("!H", len(msg)) + msg)
        return recv_frame(s)
    finally:
        s.close()


def recv_exact(s, n):
    """n octets from stream socket s, or None when it closes (or resets) first."""
    data = b""
    while len(data) < n:
        try:
            chunk = s.recv(n - len(data))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def recv_frame(s):
    """One length-prefixed message from s, or None when the connection closes."""
    pre = recv_exact(s, 2)
    if pre is None:
        return None
    return recv_exact(s, struct.unpack("!H", pre)[0])
