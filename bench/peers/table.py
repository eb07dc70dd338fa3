#!/usr/bin/env python3
"""Reads the figures run.sh collected (kith's bench lines, `xmpp:` and
`tox:` lines) from the files given and prints one table with kith's ratio
to each peer (a ratio above 1 means kith is better: faster round trips,
more messages per second)."""

import re
import sys

text = "\n".join(open(f).read() for f in sys.argv[1:])


def grab(pattern):
    m = re.search(pattern, text)
    return float(m.group(1)) if m else None


rows = [
    ("round trip p50 (ms)", False,
     grab(r"round trip \(send → peer daemon answers → answer stored\).*p50 ([\d.]+) ms"),
     grab(r"xmpp: round trip p50: ([\d.]+)"), grab(r"tox: round trip p50: ([\d.]+)")),
    ("round trip p99 (ms)", False,
     grab(r"round trip \(send → peer daemon answers → answer stored\).*p99 ([\d.]+) ms"),
     grab(r"xmpp: round trip p99: ([\d.]+)"), grab(r"tox: round trip p99: ([\d.]+)")),
    ("one-way, one send per transaction (messages/s)", True,
     grab(r"one-way, one send per transaction: ([\d.]+) messages/s"),
     grab(r"xmpp: one-way: ([\d.]+)"), grab(r"tox: one-way: ([\d.]+)")),
    ("one-way, 500 per transaction (messages/s)", True,
     grab(r"one-way, 500 sends per transaction: ([\d.]+) messages/s"), None, None),
    ("history fetched (messages/s)", True, None, None, None),
]


def rate(pattern):
    m = re.search(pattern, text)
    return int(m.group(1)) / float(m.group(2)) if m and float(m.group(2)) > 0 else None


rows[-1] = rows[-1][:2] + (rate(r"(?m)^history: (\d+) messages in ([\d.]+) s"),
                           rate(r"xmpp: history: (\d+) messages in ([\d.]+) s"), None)
n_kith = re.search(r"history: (\d+) messages in", text)
n_xmpp = re.search(r"xmpp: history: (\d+) messages", text)


def cell(v):
    return "—" if v is None else (f"{v:.3f}" if v < 10 else f"{v:,.0f}")


def ratio(kith, peer, higher_better):
    if kith is None or peer is None or kith == 0 or peer == 0:
        return "—"
    r = kith / peer if higher_better else peer / kith
    return f"{r:.2f}×"


print("| workload | kith | Prosody + slixmpp | kith vs XMPP | Tox (c-toxcore) | kith vs Tox |")
print("|---|---|---|---|---|---|")
for name, higher, kith, xmpp, tox in rows:
    print(f"| {name} | {cell(kith)} | {cell(xmpp)} | {ratio(kith, xmpp, higher)} | "
          f"{cell(tox)} | {ratio(kith, tox, higher)} |")
if n_kith or n_xmpp:
    print(f"\nhistory sizes: kith {n_kith.group(1) if n_kith else '—'} messages, "
          f"XMPP (MAM) {n_xmpp.group(1) if n_xmpp else '—'} messages; Tox keeps none.")
print("ratios: above 1 means kith is better (lower latency, more messages/s, shorter fetch).")
