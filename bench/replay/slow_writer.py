#!/usr/bin/env python3
"""Writes one audit event with a large userAgent to stdout in pieces, pausing between them: a
live stream that is slow in the middle of a large document. For `vigil replay -`'s CPU cost in
that case (bench/RESULTS.md, session 15):

    python3 bench/replay/slow_writer.py | /usr/bin/time -f "%U+%S s CPU" build/tools/vigil replay -o json -

Options: --mib N (size of the userAgent, default 20), --piece KIB (default 64), --pause MS (default 12).
"""
import argparse
import json
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--mib", type=int, default=20)
ap.add_argument("--piece", type=int, default=64)
ap.add_argument("--pause", type=float, default=12)
args = ap.parse_args()
event = {
    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "slow-writer",
    "stage": "ResponseComplete", "verb": "list", "user": {"username": "u"}, "sourceIPs": ["10.0.0.1"],
    "userAgent": "a" * (args.mib << 20), "objectRef": {"resource": "secrets"},
    "responseStatus": {"code": 200}, "requestReceivedTimestamp": "2026-01-01T00:00:00Z",
}
line = (json.dumps(event) + "\n").encode()
out = sys.stdout.buffer
step = args.piece << 10
for at in range(0, len(line), step):
    out.write(line[at:at + step])
    out.flush()
    time.sleep(args.pause / 1000)
