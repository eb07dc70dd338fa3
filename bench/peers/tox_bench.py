#!/usr/bin/env python3
"""Tox (c-toxcore 0.2.18 through ctypes) on loopback: the workloads of
kith's link benchmark that Tox has (echo round trip, one-way burst; it
keeps no history).

Two Tox instances in this process, UDP on 127.0.0.1, no LAN discovery, no
IPv6, each bootstrapped from the other and friends without a request. The
loop waits on both instances' UDP sockets (found in /proc/self/fd by their
ports) with select(), never on a fixed sleep, and calls tox_iterate when a
socket is readable or the iteration interval is due. Prints
`tox: NAME: VALUE UNIT` lines (table.py reads them).
"""

import ctypes
import os
import select
import socket
import sys
import time

RTT_SAMPLES = 1000
RTT_WARMUP = 100
BURST = 20000

lib = ctypes.CDLL(os.environ.get("KITH_TOXCORE", "libtoxcore.so.2"))
u8p = ctypes.POINTER(ctypes.c_uint8)
c_int_p = ctypes.POINTER(ctypes.c_int)

lib.tox_options_new.restype = ctypes.c_void_p
lib.tox_options_new.argtypes = [c_int_p]
for name in ("tox_options_set_ipv6_enabled", "tox_options_set_udp_enabled",
             "tox_options_set_local_discovery_enabled", "tox_options_set_hole_punching_enabled"):
    getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_bool]
for name in ("tox_options_set_start_port", "tox_options_set_end_port"):
    getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_uint16]
lib.tox_new.restype = ctypes.c_void_p
lib.tox_new.argtypes = [ctypes.c_void_p, c_int_p]
lib.tox_self_get_public_key.argtypes = [ctypes.c_void_p, u8p]
lib.tox_self_get_dht_id.argtypes = [ctypes.c_void_p, u8p]
lib.tox_self_get_udp_port.restype = ctypes.c_uint16
lib.tox_self_get_udp_port.argtypes = [ctypes.c_void_p, c_int_p]
lib.tox_bootstrap.restype = ctypes.c_bool
lib.tox_bootstrap.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint16, u8p, c_int_p]
lib.tox_friend_add_norequest.restype = ctypes.c_uint32
lib.tox_friend_add_norequest.argtypes = [ctypes.c_void_p, u8p, c_int_p]
lib.tox_friend_send_message.restype = ctypes.c_uint32
lib.tox_friend_send_message.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                        ctypes.c_char_p, ctypes.c_size_t, c_int_p]
lib.tox_iterate.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
lib.tox_iteration_interval.restype = ctypes.c_uint32
lib.tox_iteration_interval.argtypes = [ctypes.c_void_p]
lib.tox_kill.argtypes = [ctypes.c_void_p]

MESSAGE_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                              u8p, ctypes.c_size_t, ctypes.c_void_p)
CONNECTION_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                 ctypes.c_void_p)
lib.tox_callback_friend_message.argtypes = [ctypes.c_void_p, MESSAGE_CB]
lib.tox_callback_friend_connection_status.argtypes = [ctypes.c_void_p, CONNECTION_CB]

SENDQ = 4  # TOX_ERR_FRIEND_SEND_MESSAGE_SENDQ


def new_tox():
    err = ctypes.c_int(0)
    opts = lib.tox_options_new(ctypes.byref(err))
    lib.tox_options_set_ipv6_enabled(opts, False)
    lib.tox_options_set_udp_enabled(opts, True)
    lib.tox_options_set_local_discovery_enabled(opts, False)
    lib.tox_options_set_start_port(opts, 33445)
    lib.tox_options_set_end_port(opts, 33545)
    tox = lib.tox_new(opts, ctypes.byref(err))
    if not tox:
        raise SystemExit(f"tox_new failed: {err.value}")
    return tox


def key(tox, getter):
    buf = (ctypes.c_uint8 * 32)()
    getter(tox, buf)
    return buf


def udp_fd(port):
    """The file descriptor of this process's UDP socket bound to `port`."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            s = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            if s.type == socket.SOCK_DGRAM and s.getsockname()[1] == port:
                return fd
        except OSError:
            pass
        finally:
            s.close()
    raise SystemExit(f"no UDP socket on port {port}")


class Pair:
    def __init__(self):
        self.a, self.b = new_tox(), new_tox()
        err = ctypes.c_int(0)
        self.fds = [udp_fd(lib.tox_self_get_udp_port(t, ctypes.byref(err))) for t in (self.a, self.b)]
        for me, other in ((self.a, self.b), (self.b, self.a)):
            port = lib.tox_self_get_udp_port(other, ctypes.byref(err))
            lib.tox_bootstrap(me, b"127.0.0.1", port, key(other, lib.tox_self_get_dht_id),
                              ctypes.byref(err))
        self.friend_of_a = lib.tox_friend_add_norequest(
            self.a, key(self.b, lib.tox_self_get_public_key), ctypes.byref(err))
        self.friend_of_b = lib.tox_friend_add_norequest(
            self.b, key(self.a, lib.tox_self_get_public_key), ctypes.byref(err))
        self.connected = set()
        self.on_a = None
        self.on_b = None
        self._cbs = [
            CONNECTION_CB(lambda tox, f, status, _u: self.connected.add(tox) if status else None),
            MESSAGE_CB(lambda tox, f, kind, msg, n, _u: self.on_a(bytes(msg[:n]))),
            MESSAGE_CB(lambda tox, f, kind, msg, n, _u: self.on_b(bytes(msg[:n]))),
        ]
        for t in (self.a, self.b):
            lib.tox_callback_friend_connection_status(t, self._cbs[0])
        lib.tox_callback_friend_message(self.a, self._cbs[1])
        lib.tox_callback_friend_message(self.b, self._cbs[2])
        self.due = [0.0, 0.0]

    def step(self, wait=0.05, force=False):
        """Waits for a packet (or the next due iteration) and iterates;
        with `force`, iterates both at once (there is data to send)."""
        now = time.monotonic()
        timeout = 0.0 if force else max(0.0, min(min(self.due) - now, wait))
        ready, _, _ = select.select(self.fds, [], [], timeout)
        now = time.monotonic()
        for i, t in enumerate((self.a, self.b)):
            if force or self.fds[i] in ready or now >= self.due[i]:
                lib.tox_iterate(t, None)
                self.due[i] = time.monotonic() + lib.tox_iteration_interval(t) / 1000

    def send(self, tox, friend, text):
        err = ctypes.c_int(0)
        data = text.encode()
        while True:
            lib.tox_friend_send_message(tox, friend, 0, data, len(data), ctypes.byref(err))
            if err.value != SENDQ:
                return err.value
            # The send queue is full: let both sides move packets now.
            self.step(force=True)


def main():
    p = Pair()
    deadline = time.monotonic() + 60
    while len(p.connected) < 2:
        if time.monotonic() > deadline:
            raise SystemExit("the two Tox instances never connected")
        p.step()
    # Echo round trip.
    got = []
    p.on_b = lambda msg: p.send(p.b, p.friend_of_b, msg.decode())
    p.on_a = lambda msg: got.append(time.perf_counter())
    samples = []
    for i in range(RTT_WARMUP + RTT_SAMPLES):
        got.clear()
        t = time.perf_counter()
        p.send(p.a, p.friend_of_a, f"ping {i}")
        while not got:
            p.step()
        if i >= RTT_WARMUP:
            samples.append((got[0] - t) * 1000)
    samples.sort()
    print(f"tox: round trip p50: {samples[len(samples) // 2]:.3f} ms")
    print(f"tox: round trip p99: {samples[int(len(samples) * 0.99) - 1]:.3f} ms")
    # One-way burst.
    count = [0]
    p.on_b = lambda msg: count.__setitem__(0, count[0] + 1)
    t = time.perf_counter()
    for i in range(BURST):
        p.send(p.a, p.friend_of_a, f"message {i:>6}")
    while count[0] < BURST:
        p.step()
    print(f"tox: one-way: {BURST / (time.perf_counter() - t):.0f} messages/s")
    print("tox: history: none kept")
    for t in (p.a, p.b):
        lib.tox_kill(t)


if __name__ == "__main__":
    main()
