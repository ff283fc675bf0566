#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Logs for the `dnsink hunt` benchmark (tools/bench/hunt.sh): Route 53 Resolver
query log lines (the shape AWS documents: version, account_id, region, vpc_id,
query_timestamp, query_name, query_type, query_class, rcode, answers, srcaddr,
srcport, transport, srcids) and a dnstap file of CLIENT_QUERY/CLIENT_RESPONSE
pairs (Frame Streams, protobuf written by hand here, so the benchmark needs no
DNS server). One lookup in 100 is of a name of the list, the rest of names it
does not cover."""
import argparse
import random
import struct


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(num, wt):
    return varint(num << 3 | wt)


def lenf(num, data):
    return key(num, 2) + varint(len(data)) + data


def vf(num, v):
    return key(num, 0) + varint(v)


def wire(name):
    return b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\0"


def dns(name, qid, response):
    hdr = struct.pack("!HHHHHH", qid, 0x8180 if response else 0x0100, 1, 1 if response else 0,
                      0, 0)
    q = wire(name) + b"\x00\x01\x00\x01"
    if response:
        q += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01"
    return hdr + q


def frame(payload):
    return struct.pack("!I", len(payload)) + payload


def control(ctype, fields=b""):
    body = struct.pack("!I", ctype) + fields
    return struct.pack("!II", 0, len(body)) + body


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--list", required=True)
    ap.add_argument("--route53", required=True)
    ap.add_argument("--dnstap", required=True)
    ap.add_argument("--records", type=int, default=1000000)
    ap.add_argument("--seed", type=int, default=14)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    with open(a.list) as f:
        listed = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")][:100000]
    clean = ["host%d.svc%d.example.net" % (i, i % 97) for i in range(50000)]

    def name(i):
        return rng.choice(listed) if i % 100 == 0 else clean[i % len(clean)]

    with open(a.route53, "w") as f:
        for i in range(a.records):
            t = 1700000000 + i // 1000
            f.write('{"version":"1.100000","account_id":"123456789012","region":"us-east-1",'
                    '"vpc_id":"vpc-0abc","query_timestamp":"%s","query_name":"%s.",'
                    '"query_type":"A","query_class":"IN","rcode":"NOERROR","answers":'
                    '[{"Rdata":"192.0.2.1","Type":"A","Class":"IN"}],"srcaddr":"10.0.%d.%d",'
                    '"srcport":"%d","transport":"UDP","srcids":{"instance":"i-0abc"}}\n'
                    % ("2023-11-14T22:%02d:%02dZ" % (t // 60 % 60, t % 60), name(i),
                       i // 256 % 256, i % 256, 1024 + i % 60000))
    ct = b"protobuf:dnstap.Dnstap"
    ctf = struct.pack("!II", 1, len(ct)) + ct  # CONTENT_TYPE field
    with open(a.dnstap, "wb") as f:
        f.write(control(2, ctf))  # START
        buf = []
        for i in range(a.records // 2):
            n = name(i)
            for resp in (False, True):
                m = (vf(1, 6 if resp else 5) + vf(2, 1) + vf(3, 1) +
                     lenf(4, bytes([10, 0, i // 256 % 256, i % 256])) + vf(6, 1024 + i % 60000) +
                     vf(8 if not resp else 12, 1700000000 + i // 1000) +
                     lenf(10 if not resp else 14, dns(n, i & 0xFFFF, resp)))
                buf.append(frame(lenf(1, b"bench") + lenf(14, m) + vf(15, 1)))
            if len(buf) > 10000:
                f.write(b"".join(buf))
                buf = []
        f.write(b"".join(buf))
        f.write(control(3))  # STOP


if __name__ == "__main__":
    main()
