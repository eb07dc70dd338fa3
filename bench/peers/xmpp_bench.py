#!/usr/bin/env python3
"""Prosody (XMPP) with two slixmpp clients on loopback: the workloads of
kith's link benchmark (echo round trip, one-way burst, history fetch).

Starts its own Prosody (a throw-away config and data folder, c2s on
127.0.0.1, per-client rate limits lifted, MAM on), registers two users,
connects both clients, and prints one line per figure in the form
`xmpp: NAME: VALUE UNIT` (table.py reads them). Run by run.sh inside a
loopback-only network namespace; as root, Prosody runs as its own user.
"""

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath
import xml.etree.ElementTree as ET

DOMAIN = "localhost"
PASSWORD = "bench-password-1"
RTT_SAMPLES = 1000
RTT_WARMUP = 100
BURST = int(os.environ.get("KITH_PEERS_BURST", "20000"))
HISTORY = 1000
WINDOW = 2000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A Prosody of our own, stopped on exit."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kith-xmpp-")
        self.port = free_port()
        d = self.dir
        os.makedirs(f"{d}/data")
        os.makedirs(f"{d}/certs")
        as_root = os.geteuid() == 0
        user = 'prosody_user = "prosody"\n' if as_root else ""
        with open(f"{d}/prosody.cfg.lua", "w") as f:
            f.write(f"""pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}/certs"
plugin_paths = {{}}
admins = {{}}
-- No "limits": its per-client rate limit (about 10 kB/s by default) would
-- measure the limiter, not the server.
modules_enabled = {{ "roster"; "saslauth"; "disco"; "presence"; "message"; "iq"; "ping"; "mam" }}
modules_disabled = {{ "s2s"; "tls" }}
c2s_ports = {{ {self.port} }}
c2s_interfaces = {{ "127.0.0.1" }}
s2s_ports = {{}}
allow_registration = false
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
-- Accounts on disk; the message archive (MAM) in memory: the file-backed
-- archive rewrites its file as it grows and would measure that.
storage = {{ archive = "memory" }}
default_storage = "internal"
archive_expires_after = "never"
default_archive_policy = true
max_archive_query_results = 10000
-- A burst queues megabytes for the receiving client: a larger send
-- buffer than the default, or Prosody closes that client's stream.
network_settings = {{ max_send_buffer_size = 268435456 }}
log = {{ warn = "{d}/prosody.log" }}
{user}VirtualHost "{DOMAIN}"
""")
        if as_root:
            subprocess.run(["chown", "-R", "prosody:prosody", d], check=True)
        self.prefix = (["setpriv", "--reuid=prosody", "--regid=prosody", "--init-groups"]
                       if as_root else [])
        for user in ("alice", "bob"):
            subprocess.run(self.prefix + ["prosodyctl", "--config", f"{d}/prosody.cfg.lua",
                                          "register", user, DOMAIN, PASSWORD], check=True)
        self.proc = subprocess.Popen(self.prefix + ["prosody", "--config", f"{d}/prosody.cfg.lua", "-F"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("prosody did not start")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Client(slixmpp.ClientXMPP):
    def __init__(self, user, on_message=None):
        super().__init__(f"{user}@{DOMAIN}/bench", PASSWORD)
        self["feature_mechanisms"].unencrypted_plain = True
        self.ready = asyncio.Event()
        self.on_message = on_message
        self.add_event_handler("session_start", self.started)
        self.add_event_handler("message", self.got)

    async def started(self, _event):
        self.send_presence()
        self.ready.set()

    def got(self, msg):
        if self.on_message and msg["type"] in ("chat", "normal") and msg["body"]:
            self.on_message(msg)


async def connect(client, port):
    client.connect(("127.0.0.1", port), force_starttls=False, disable_starttls=True)
    await asyncio.wait_for(client.ready.wait(), 30)


async def main():
    server = Server()
    try:
        await run(server.port)
    finally:
        server.stop()


async def run(port):
    loop = asyncio.get_running_loop()
    echoed = asyncio.Queue()
    counted = {"n": 0, "done": loop.create_future()}
    mode = {"echo": True}

    def bob_got(msg):
        if mode["echo"]:
            bob.send_message(mto=msg["from"].bare, mbody=msg["body"], mtype="chat")
        else:
            counted["n"] += 1
            if counted["n"] == BURST and not counted["done"].done():
                counted["done"].set_result(time.perf_counter())

    def alice_got(msg):
        echoed.put_nowait(time.perf_counter())

    alice = Client("alice", alice_got)
    bob = Client("bob", bob_got)
    await connect(alice, port)
    await connect(bob, port)
    bob_jid = f"bob@{DOMAIN}"

    # Echo round trip: Alice sends, Bob's client answers at once.
    samples = []
    for i in range(RTT_WARMUP + RTT_SAMPLES):
        t = time.perf_counter()
        alice.send_message(mto=bob_jid, mbody=f"ping {i}", mtype="chat")
        got = await asyncio.wait_for(echoed.get(), 10)
        if i >= RTT_WARMUP:
            samples.append((got - t) * 1000)
    samples.sort()
    p50 = samples[len(samples) // 2]
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(f"xmpp: round trip p50: {p50:.3f} ms")
    print(f"xmpp: round trip p99: {p99:.3f} ms")

    # One-way burst: Alice sends as fast as the stream takes them.
    mode["echo"] = False
    t = time.perf_counter()
    for i in range(BURST):
        alice.send_message(mto=bob_jid, mbody=f"message {i:>6}", mtype="chat")
        if i % 500 == 0:
            # At most WINDOW in flight: the sender keeps up with the
            # receiver rather than filling the server's buffers.
            while i - counted["n"] > WINDOW:
                await asyncio.sleep(0.001)
            await asyncio.sleep(0)
    try:
        end = await asyncio.wait_for(counted["done"], 120)
    except asyncio.TimeoutError:
        raise SystemExit(f"xmpp: one-way: stalled, Bob holds {counted['n']} of {BURST}")
    print(f"xmpp: one-way: {BURST / (end - t):.0f} messages/s")

    # History: Bob fetches the last HISTORY messages from his archive (MAM).
    results = {"n": 0}

    def mam_result(_stanza):
        results["n"] += 1

    bob.register_handler(Callback("mam result",
                                  MatchXPath("{jabber:client}message/{urn:xmpp:mam:2}result"),
                                  mam_result))
    iq = bob.make_iq_set()
    query = ET.fromstring(
        "<query xmlns='urn:xmpp:mam:2' queryid='h'>"
        "<set xmlns='http://jabber.org/protocol/rsm'>"
        f"<max>{HISTORY}</max><before/></set></query>")
    iq.append(query)
    t = time.perf_counter()
    await iq.send(timeout=120)
    took = time.perf_counter() - t
    print(f"xmpp: history: {results['n']} messages in {took:.3f} s")
    alice.disconnect()
    bob.disconnect()


if __name__ == "__main__":
    asyncio.run(main())
