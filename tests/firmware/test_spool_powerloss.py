"""The spool on real LittleFS (VfsLfs2 over flashsim) under power cuts, full flash and bit rot.

MicroPython only (CPython has no VfsLfs2): skips cleanly elsewhere. The crash sweep runs a
scripted workload (appends of 300 B - 4 KB receipts, pendings, acks, drains, evictions,
reboots), cuts power at program/erase operation k for every k in turn (clean and torn), then
reboots, recovers and checks the guarantees. TILLTAP_SOAK=1 sweeps more workloads and also
cuts power a second time during the recovery.
"""
import os

import fwtest
from flashsim import VFS, FlashSim, PowerCut

from tilltap_fw.spool import Spool

MOUNT = "/flash"
SPOOL = MOUNT + "/spool"
SOAK = os.getenv("TILLTAP_SOAK") == "1"


def _need_lfs():
    if VFS is None:
        fwtest.skip("needs MicroPython's vfs.VfsLfs2 (run under the unix port)")


class _Rand:
    """A tiny LCG: the same workload on every run and interpreter."""

    def __init__(self, seed):
        self.x = seed

    def below(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 8) % n


def _receipt(n, size):
    head = "RECEIPT %d\n" % n
    line = "%04d ITEM-%d  1 x %d.%02d\n" % (n, n * 7919 % 997, n % 50, n % 100)
    return (head + line * ((size - len(head)) // len(line) + 1))[:size].encode()


def _workload(seed, length):
    """Steps: ("append", record), ("ack", n oldest), ("ack_newest",), ("drain",), ("reboot",)."""
    rnd = _Rand(seed)
    steps = []
    n = 0
    for _ in range(length):
        r = rnd.below(20)
        if r < 11:
            n += 1
            steps.append(("append", _receipt(n, 300 + rnd.below(3800))))
        elif r < 14:
            steps.append(("ack", 1 + rnd.below(3)))
        elif r < 16:
            steps.append(("ack_newest",))
        elif r < 18:
            steps.append(("drain",))
        else:
            steps.append(("reboot",))
    return steps


class _Run:
    """Runs a workload against the spool and keeps the model of what must be on flash."""

    def __init__(self, flash, options):
        self.flash = flash
        self.options = options
        self.stored = {}  # seq -> record: append returned, ack not returned, not dropped
        self.acked = set()  # ack returned
        self.top = 0  # highest seq handed out
        self.step = None  # the step in progress when the power went

    def boot(self):
        self.flash.mount(MOUNT)
        try:
            self.spool = Spool(SPOOL, **self.options)
        except OSError:  # recovery may raise when the filesystem cannot be read at all
            self.flash.check()
            raise
        self.flash.check()

    def run(self, steps):
        self.boot()
        for step in steps:
            self.step = step
            self.do(step)
        self.step = None

    def do(self, step):
        sp = self.spool
        kind = step[0]
        if kind == "append":
            seq = sp.append(step[1])
            self.flash.check()  # from here on, the call completed with the power on
            assert seq is None or seq == self.top + 1, (seq, self.top)
            self.top += 1
            if seq is not None:
                self.stored[seq] = step[1]
            self.forget_dropped(sp.dropped_ranges())
        elif kind == "reboot":
            self.boot()
            self.check_exact()
        else:
            batch = fwtest.pending(sp, 1000)
            self.flash.check()
            assert [s for s, _ in batch] == sorted(self.stored)
            if kind == "ack":
                batch = batch[:step[1]]
            elif kind == "ack_newest":
                batch = batch[-1:]
            seqs = [s for s, _ in batch]
            self.step = ("acking", seqs)
            sp.ack(seqs)
            self.flash.check()
            for s in seqs:
                del self.stored[s]
                self.acked.add(s)

    def forget_dropped(self, ranges):
        for seq in list(self.stored):
            if _covered(seq, ranges):
                del self.stored[seq]

    def check_exact(self):
        got = fwtest.pending(self.spool, 1000)
        self.flash.check()
        assert [s for s, _ in got] == sorted(self.stored), (got, sorted(self.stored))
        for seq, record in got:
            assert record == self.stored[seq]

    def check_after_cut(self):
        """Recovered spool versus the model; then prove the spool still works."""
        sp = self.spool
        got = dict(fwtest.pending(sp, 1000))
        ranges = sp.dropped_ranges()
        dropped = sp.stats()["dropped_by"]
        # a cut write must leave nothing behind, not a record that later counts as corrupt
        assert dropped["corrupt"] == dropped["write_error"] == 0, dropped
        acking = self.step[1] if self.step and self.step[0] == "acking" else ()
        for seq, record in self.stored.items():
            if seq in got:
                assert got[seq] == record, "record %d damaged" % seq
            else:
                assert _covered(seq, ranges) or seq in acking, "record %d lost" % seq
        for seq in self.acked:
            assert seq not in got, "acked record %d came back" % seq
        for seq, record in got.items():
            if seq not in self.stored:  # only the append cut after its rename may appear
                assert self.step[0] == "append" and seq == self.top + 1, "phantom %d" % seq
                assert record == self.step[1]
        newest = max([self.top] + list(got))
        seq = sp.append(b"after the cut")
        if seq is None:  # stop_capturing with a full spool: the dropped seq must be new too
            assert self.options.get("policy") == "stop_capturing"
            assert sp.dropped_ranges()[-1][1] > newest
            newest = sp.dropped_ranges()[-1][1]
            sp.ack(list(got))
            seq = sp.append(b"after the cut")
        assert seq is not None and seq > newest, "seq %s reused (newest %d)" % (seq, newest)
        batch = fwtest.pending(sp, 1000)
        assert batch[-1] == (seq, b"after the cut")
        sp.ack([s for s, _ in batch])
        assert fwtest.pending(sp, 10) == []
        assert sp.append(b"and again") == seq + 1


def _covered(seq, ranges):
    for first, last in ranges:
        if first <= seq <= last:
            return True
    return False


def _sweep(steps, options, blocks=48, second_cut=False):
    """Cut the power at every program/erase of the workload, cleanly and torn; returns
    (operations in the workload, crash points exercised, records it drops for room)."""
    flash = FlashSim(blocks)
    flash.format()
    blank = flash.snapshot()
    dry = _Run(flash, options)
    flash.reset_counters()
    dry.run(steps)
    total = flash.ops
    drops = dry.spool.stats()["dropped"]
    crashed = bytearray(len(blank)) if second_cut else None  # reused: the heap is small
    cuts = 0
    for k in range(total):
        for torn in (False, True):
            flash.unmount(MOUNT)
            flash.restore(blank)
            flash.reset_counters()
            flash.arm(k, torn)
            run = _Run(flash, options)
            try:
                run.run(steps)
                assert False, "workload finished without reaching cut %d" % k
            except PowerCut:
                pass
            cuts += 1
            flash.disarm()
            if second_cut:  # and again at each write the recovery itself makes
                flash.snapshot(crashed)
                flash.reset_counters()
                run.boot()
                for j in range(flash.ops):
                    flash.restore(crashed)
                    flash.reset_counters()
                    flash.arm(j, torn)
                    try:
                        run.boot()
                        assert False, "recovery finished without reaching cut %d" % j
                    except PowerCut:
                        cuts += 1
                    flash.disarm()
                flash.restore(crashed)
            run.boot()
            run.check_after_cut()
    flash.unmount(MOUNT)
    return total, cuts, drops


_OPTIONS = {"max_bytes": 10000, "min_free": 8192}


def test_power_cut_at_every_flash_operation():
    _need_lfs()
    steps = _workload(7, 60)
    kinds = [s[0] for s in steps]
    # drains, reboots after a drain and evictions (max_bytes) are all in this script
    assert kinds.count("drain") and kinds.count("reboot") and kinds.count("ack_newest")
    cuts = 0
    for options in (_OPTIONS, dict(_OPTIONS, policy="stop_capturing")):
        policy = options.get("policy", "drop_oldest")
        total, c, drops = _sweep(steps, options)
        print("spool power-loss %s: %d flash operations, %d crash points (clean + torn), "
              "%d records dropped for room" % (policy, total, c, drops))
        assert drops  # the sweep also cuts power in the middle of evictions
        cuts += c
    if SOAK:
        for seed in range(1, 13):
            options = dict(_OPTIONS, policy="stop_capturing") if seed % 2 else _OPTIONS
            total, c, _ = _sweep(_workload(seed * 101, 80), options, second_cut=True)
            print("spool power-loss soak seed %d: %d operations, %d crash points"
                  % (seed, total, c))
            cuts += c
    print("spool power-loss: %d crash points exercised" % cuts)
    assert cuts >= 1000, cuts


def _fill(flash, options, n, size):
    """Append n receipts to a fresh spool on flash; returns (spool, seqs returned)."""
    flash.format()
    flash.mount(MOUNT)
    sp = Spool(SPOOL, **options)
    seqs = []
    for i in range(n):
        seqs.append(sp.append(_receipt(i, size + 97 * i % 900)))
    return sp, seqs


def test_full_flash_drop_oldest_never_raises():
    _need_lfs()
    flash = FlashSim(24)
    # min_free=0: the spool runs into LittleFS's own ENOSPC, not into its own estimate
    sp, seqs = _fill(flash, {"min_free": 0}, 60, 2500)
    try:
        assert seqs[-1] is not None
        got = fwtest.pending(sp, 100)
        st = sp.stats()
        dropped = st["dropped_by"]
        assert len(got) + dropped["full_oldest"] + dropped["write_error"] == 60, st
        assert len(got) > 5 and dropped["full_oldest"] > 0
        for seq, record in got:
            assert record == _receipt(seq - 1, 2500 + 97 * (seq - 1) % 900)
        for seq in range(1, 61):
            assert seq in dict(got) or _covered(seq, sp.dropped_ranges())
        flash.mount(MOUNT)
        assert fwtest.pending(Spool(SPOOL, min_free=0), 100) == got
    finally:
        flash.unmount(MOUNT)


def _fill_behind_the_spool():
    """Another writer takes every free block: the spool's free-space estimate is now stale."""
    os.mkdir(MOUNT + "/log")
    try:
        for i in range(1000):
            with open(MOUNT + "/log/%d" % i, "wb") as f:
                f.write(b"L" * 4000)
    except OSError as e:
        assert e.errno == 28, e


def _clear_behind_the_spool():
    for name in os.listdir(MOUNT + "/log"):
        os.remove(MOUNT + "/log/" + name)


def test_filesystem_enospc_during_append_is_handled():
    _need_lfs()
    for policy in ("drop_oldest", "stop_capturing"):
        flash = FlashSim(24)
        sp, seqs = _fill(flash, {"min_free": 0, "policy": policy}, 5, 2500)
        try:
            _fill_behind_the_spool()
            seq = sp.append(_receipt(6, 2500))  # LittleFS itself raises ENOSPC inside
            assert os.listdir(SPOOL + "/tmp") == []
            st = sp.stats()
            if policy == "drop_oldest":
                assert seq == 6 and st["dropped_by"]["full_oldest"] >= 1, st
                assert fwtest.pending(sp, 10)[-1] == (6, _receipt(6, 2500))
            else:
                assert seq is None and st["dropped_by"]["write_error"] == 1, st
                assert [s for s, _ in fwtest.pending(sp, 10)] == seqs
            assert sp.dropped_ranges()
            _clear_behind_the_spool()
            assert sp.append(b"room again") == 7
            flash.mount(MOUNT)
            sp = Spool(SPOOL, min_free=0, policy=policy)
            assert fwtest.pending(sp, 10)[-1] == (7, b"room again")
        finally:
            flash.unmount(MOUNT)


def test_full_flash_keeps_min_free():
    _need_lfs()
    flash = FlashSim(32)
    sp, seqs = _fill(flash, {"min_free": 16384}, 60, 3000)
    try:
        assert None not in seqs
        st = os.statvfs(MOUNT)
        assert st[1] * st[4] >= 16384 - 4096, st
        assert sp.stats()["dropped_by"]["write_error"] == 0
    finally:
        flash.unmount(MOUNT)


def test_full_flash_stop_capturing_keeps_oldest():
    _need_lfs()
    flash = FlashSim(24)
    sp, seqs = _fill(flash, {"min_free": 0, "policy": "stop_capturing"}, 40, 2500)
    try:
        kept = [s for s in seqs if s is not None]
        assert kept == list(range(1, len(kept) + 1)) and 5 < len(kept) < 40
        st = sp.stats()
        assert st["dropped"] == 40 - len(kept)
        assert sp.dropped_ranges() == [(len(kept) + 1, 40)]
        sp.ack(kept[:4])
        assert sp.append(b"room again") == 41
        assert [s for s, _ in fwtest.pending(sp, 100)] == kept[4:] + [41]
    finally:
        flash.unmount(MOUNT)


def test_corrupt_flash_block_is_detected_and_removed():
    _need_lfs()
    flash = FlashSim(48)
    flash.format()
    flash.mount(MOUNT)
    try:
        sp = Spool(SPOOL, compress=False)
        records = [_receipt(i, 1500) for i in range(1, 4)]
        seqs = [sp.append(r) for r in records]
        at = bytes(flash.image).find(records[1][-40:])
        assert at > 0
        flash.image[at + 7] ^= 0x01  # one flipped bit in the data block
        flash.mount(MOUNT)  # reboot: recovery does not read payloads, so it cannot tell yet
        sp = Spool(SPOOL, compress=False)
        assert sp.stats()["count"] == 3
        got = fwtest.pending(sp, 10)
        assert got == [(seqs[0], records[0]), (seqs[2], records[2])]
        assert sp.stats()["dropped_by"]["corrupt"] == 1
        assert sp.dropped_ranges() == [(seqs[1], seqs[1])]
        flash.mount(MOUNT)
        sp = Spool(SPOOL, compress=False)
        assert fwtest.pending(sp, 10) == got and sp.stats()["dropped_by"]["corrupt"] == 1
    finally:
        flash.unmount(MOUNT)


def test_vfs_object_can_be_injected_unmounted():
    _need_lfs()
    flash = FlashSim(32)
    flash.format()
    fs = VFS(flash.device())
    sp = Spool("/spool", fs=fs, min_free=4096)
    seq = sp.append(_receipt(1, 900))
    assert fwtest.pending(Spool("/spool", fs=fs), 5) == [(seq, _receipt(1, 900))]
    assert sp.stats()["free"] > 0
