"""Two kith nodes in one Python process, through the generated binding:
make two profiles, start both nodes on loopback, add each other, send a
message each way, read the logs, and hear of the changes through a
listener. Run by ffi/tests/bindings.rs (which generates the binding into
the folder given as the first argument); exits non-zero on failure."""

import asyncio
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, sys.argv[1])
import kith_ffi as kith  # noqa: E402

WAIT = 60.0


class Heard(kith.Listener):
    """Counts what the node says changed."""

    def __init__(self):
        self.stored_count = 0
        self.lock = threading.Lock()

    def stored(self, log, count):
        with self.lock:
            self.stored_count += count

    def delivered(self, count):
        pass

    def request(self, account):
        pass

    def refresh(self):
        pass


async def until(what, check):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"never: {what}")


async def main():
    base = tempfile.mkdtemp(prefix="kith-ffi-")
    homes = [os.path.join(base, n) for n in ("alice", "bob")]
    made = [
        kith.create_profile(homes[0], "alice", "correct horse battery staple", True),
        kith.create_profile(homes[1], "bob", None, False),
    ]
    assert made[0].recovery_code and len(made[0].recovery_code) > 20, made[0]
    assert made[1].recovery_code is None
    accounts = [m.account for m in made]
    try:
        kith.create_profile(homes[1], "bob again", None, False)
        raise AssertionError("a second profile in one folder was made")
    except kith.KithError as e:
        print(f"refused as it should be: {e}")
    try:
        kith.start_node(homes[0], "not the passphrase", ["127.0.0.1:0"])
        raise AssertionError("a wrong passphrase opened the profile")
    except kith.KithError as e:
        print(f"refused as it should be: {e}")
    # Started, stopped, started again: stopping frees the profile.
    first = kith.start_node(homes[0], "correct horse battery staple", ["127.0.0.1:0"])
    first.stop()
    first.stop()
    nodes = [
        kith.start_node(homes[0], "correct horse battery staple", ["127.0.0.1:0"]),
        kith.start_node(homes[1], None, ["127.0.0.1:0"]),
    ]
    try:
        assert [n.account() for n in nodes] == accounts
        a, b = kith.Kith(homes[0]), kith.Kith(homes[1])
        heard = Heard()
        b.listen(heard)
        status = await a.status()
        assert status.protected and status.name == "alice", status
        assert not (await b.status()).protected

        # Each adds the other's card: contacts at once, no request.
        await a.contact_add(await b.card(), "bob")
        await b.contact_add(await a.card(), "alice")
        contacts = await a.contacts()
        assert [c.id for c in contacts] == [accounts[1]], contacts
        assert contacts[0].trust == "unvalidated"

        sent = await a.send("bob", "hello from python")

        async def b_has_it():
            log = await b.log(accounts[0], None)
            return any(m.id == sent and m.text == "hello from python" for m in log)

        await until("bob has alice's message", b_has_it)
        await b.send("alice", "and back")

        async def a_has_reply():
            log = await a.log("bob", 10)
            return any(m.text == "and back" and m.author == accounts[1] for m in log)

        await until("alice has bob's reply", a_has_reply)
        assert [m.text for m in await a.search("bob", "BACK")] == ["and back"]
        assert (await b.contacts())[0].unread == 1
        await b.mark_read("alice")
        assert (await b.contacts())[0].unread == 0

        async def b_heard():
            return heard.stored_count > 0

        await until("bob's listener heard of the message", b_heard)

        try:
            await a.send("nobody", "x")
            raise AssertionError("a message to no one was sent")
        except kith.KithError as e:
            print(f"refused as it should be: {e}")
        print("two nodes through the binding: ok")
    finally:
        for n in nodes:
            n.stop()


asyncio.run(main())
