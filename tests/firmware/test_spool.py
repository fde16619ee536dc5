"""Behaviour of firmware/spool.py over a plain directory (CPython and the MicroPython unix port).

Power loss on real LittleFS is in test_spool_powerloss.py (MicroPython only).
"""
import os
from binascii import a2b_base64

import fwtest

from tilltap_fw import protocol, spool
from tilltap_fw.spool import Spool

_ENOSPC = 28
_EIO = 5


def _receipt(n, size=600):
    """A text receipt of about `size` bytes, distinct per n."""
    line = "%04d  ITEM-%d  2 x 3.50  7.00\n" % (n, n * 7919 % 1000)
    body = ("RECEIPT %d\n" % n + line * (size // len(line) + 1))[:size]
    return body.encode()


def _record_files(directory):
    """seq -> path of every record file under the spool directory."""
    out = {}
    for sub in os.listdir(directory):
        if len(sub) != 6:
            continue
        for name in os.listdir(directory + "/" + sub):
            if len(name) == 2:
                out[(int(sub, 16) << 6) | int(name, 16)] = directory + "/" + sub + "/" + name
    return out


def _all_names(directory):
    names = []
    for sub in os.listdir(directory):
        names.append(sub)
        if len(sub) == 6 or sub == "tmp":
            names += [sub + "/" + n for n in os.listdir(directory + "/" + sub)]
    return sorted(names)


def _flip_byte(path, offset):
    data = bytearray(fwtest.read_file(path))
    data[offset] ^= 0x40
    with open(path, "wb") as f:
        f.write(data)


class FaultFS:
    """The os module, except that the next `failures` file creations raise OSError(errno)."""

    def __init__(self, errno=_ENOSPC, failures=0):
        self.errno = errno
        self.failures = failures
        self.opened = []

    def open(self, path, mode="r"):
        self.opened.append(path)
        if "w" in mode and self.failures:
            self.failures -= 1
            raise OSError(self.errno, "injected")
        return open(path, mode)

    def __getattr__(self, name):
        return getattr(os, name)


def test_append_pending_ack_roundtrip():
    d = fwtest.tmpdir("spool")
    try:
        sp = Spool(d)
        records = [_receipt(i, 300 + 500 * i) for i in range(6)]
        seqs = [sp.append(r) for r in records]
        assert seqs == sorted(seqs) and len(set(seqs)) == 6
        got = fwtest.pending(sp, 10)
        assert got == list(zip(seqs, records))
        sp.ack(seqs[:2])
        assert fwtest.pending(sp, 10) == list(zip(seqs[2:], records[2:]))
        assert fwtest.pending(sp, 2) == list(zip(seqs[2:4], records[2:4]))
        st = sp.stats()
        assert st["count"] == 4 and st["oldest"] == seqs[2] and st["newest"] == seqs[5]
        assert st["bytes"] == sum(os.stat(p)[6] for p in _record_files(d).values())
        assert st["free"] > 0 and st["dropped"] == 0 and st["dropped_ranges"] == []
    finally:
        fwtest.rmtree(d)


def test_pending_reads_into_a_buffer_allocated_once():
    """The uplink's batch buffer: records land in it as views, the batch ends at the first
    record that does not fit, a first record larger than the buffer comes in parts, and a
    record corrupted on flash is caught on this path too."""
    d = fwtest.tmpdir("spool")
    try:
        sp = Spool(d, compress=False)     # as on the board (its MicroPython does not deflate)
        records = [_receipt(0, 1500), _receipt(1, 1500), _receipt(2, 1500), _receipt(3, 5000)]
        seqs = [sp.append(r) for r in records]
        buf = bytearray(4000)
        batch = sp.pending(10, None, buf)
        assert [s for s, _ in batch] == seqs[:2]
        assert [b"".join(bytes(p) for p in parts) for _, parts in batch] == records[:2]
        assert all(isinstance(parts[0], memoryview) for _, parts in batch)
        sp.ack(seqs[:2])
        batch = sp.pending(10, None, buf)
        assert [s for s, _ in batch] == [seqs[2]]   # the next one does not fit beside it
        sp.ack(seqs[2:3])
        big = sp.pending(10, None, buf)
        # too large for the buffer: its first bytes, and the rest read again from flash
        assert [s for s, _ in big] == [seqs[3]] and isinstance(big[0][1][1], spool.FilePart)
        assert bytes(protocol.joined(big[0][1])) == records[3]
        seq = sp.append(_receipt(4, 800))
        sp.ack(seqs[3:])
        _flip_byte(_record_files(d)[seq], 100)
        assert sp.pending(10, None, buf) == [] and sp.stats()["dropped_by"]["corrupt"] == 1
    finally:
        fwtest.rmtree(d)


def test_records_survive_reopen_in_order():
    d = fwtest.tmpdir("spool")
    try:
        sp = Spool(d)
        seqs = [sp.append(_receipt(i)) for i in range(5)]
        sp.ack([seqs[1]])
        sp = Spool(d)
        assert [s for s, _ in fwtest.pending(sp, 10)] == [seqs[0]] + seqs[2:]
        assert fwtest.pending(sp, 10)[0][1] == _receipt(0)
    finally:
        fwtest.rmtree(d)


def test_ack_deletes_exactly_those_and_ignores_unknown():
    d = fwtest.tmpdir("spool")
    try:
        sp = Spool(d)
        seqs = [sp.append(_receipt(i)) for i in range(5)]
        sp.ack([seqs[3], seqs[1], 999999, 0, -5])
        sp.ack([seqs[3]])  # again: harmless
        assert [s for s, _ in fwtest.pending(sp, 10)] == [seqs[0], seqs[2], seqs[4]]
        assert sorted(_record_files(d)) == [seqs[0], seqs[2], seqs[4]]
    finally:
        fwtest.rmtree(d)


def test_seqs_never_reused_after_everything_acked_and_reboot():
    d = fwtest.tmpdir("spool")
    try:
        sp = Spool(d)
        seqs = [sp.append(_receipt(i)) for i in range(3)]
        sp.ack(seqs)
        assert fwtest.pending(sp, 10) == []
        sp = Spool(d)
        s = sp.append(_receipt(9))
        assert s > seqs[-1]
        assert fwtest.pending(sp, 10) == [(s, _receipt(9))]  # the kept marker is not a record
        sp.ack([s])
        assert [n for n in _all_names(d) if n.startswith("last.")] == ["last.%08x" % s]
        sp = Spool(d)
        assert sp.append(_receipt(10)) == s + 1
        assert [n for n in _all_names(d) if n.startswith("last.")] == []
    finally:
        fwtest.rmtree(d)


def test_drain_costs_no_state_rewrite():
    """Acking the newest record keeps its seq on disk by a rename, not a state-file write."""
    d = fwtest.tmpdir("spool")
    try:
        fs = FaultFS()
        sp = Spool(d, fs=fs)
        for i in range(3):
            sp.ack([sp.append(_receipt(i))])
        assert [p for p in fs.opened if "state" in p] == [d + "/state"]  # the read at boot
    finally:
        fwtest.rmtree(d)


def test_seqs_increase_across_many_reopens_and_subdirectories():
    d = fwtest.tmpdir("spool")
    try:
        last = 0
        for round_ in range(4):
            sp = Spool(d)
            for i in range(150):
                s = sp.append(b"r%d-%d" % (round_, i))
                assert s > last
                last = s
            sp.ack([s for s, _ in fwtest.pending(sp, 100)])
        sp = Spool(d)
        assert sp.stats()["count"] == 4 * 50
        for sub in os.listdir(d):
            if len(sub) == 6:
                assert len(os.listdir(d + "/" + sub)) <= 64
        sp.ack([s for s, _ in fwtest.pending(sp, 1000)])
        # emptied subdirectories are removed (each costs LittleFS metadata blocks)
        assert len([n for n in os.listdir(d) if len(n) == 6]) <= 1
    finally:
        fwtest.rmtree(d)


def test_pending_limit_and_max_bytes():
    d = fwtest.tmpdir("spool")
    try:
        sp = Spool(d)
        seqs = [sp.append(_receipt(i, 1000)) for i in range(5)]
        assert [s for s, _ in fwtest.pending(sp, 3)] == seqs[:3]
        assert [s for s, _ in fwtest.pending(sp, 10, max_bytes=2500)] == seqs[:2]
        assert [s for s, _ in fwtest.pending(sp, 10, max_bytes=10)] == seqs[:1]  # never stuck
        assert fwtest.pending(sp, 0) == []
    finally:
        fwtest.rmtree(d)


def test_recovery_cleans_temporary_and_torn_files():
    d = fwtest.tmpdir("spool")
    try:
        sp = Spool(d)
        seqs = [sp.append(_receipt(i)) for i in range(3)]
        files = _record_files(d)
        with open(d + "/tmp/%08x" % (seqs[-1] + 1), "wb") as f:
            f.write(b"half a rec")  # a write cut before its rename
        with open(files[seqs[1]], "wb") as f:
            f.write(b"TT\x01")  # shorter than a header
        with open(d + "/tmp/state", "wb") as f:
            f.write(b"x")
        sp = Spool(d)
        assert [s for s, _ in fwtest.pending(sp, 10)] == [seqs[0], seqs[2]]
        assert sp.stats()["dropped_by"]["corrupt"] == 1
        assert sp.dropped_ranges() == [(seqs[1], seqs[1])]
        assert os.listdir(d + "/tmp") == []
        assert sp.append(_receipt(5)) == seqs[-1] + 1
    finally:
        fwtest.rmtree(d)


def test_recovery_reads_no_record_payload():
    d = fwtest.tmpdir("spool")
    try:
        sp = Spool(d)
        for i in range(300):
            sp.append(_receipt(i, 200))
        fs = FaultFS()
        sp = Spool(d, fs=fs)
        assert fs.opened == [d + "/state"], fs.opened[:5]
        assert sp.stats()["count"] == 300
    finally:
        fwtest.rmtree(d)


def test_corrupt_record_is_counted_removed_never_returned():
    d = fwtest.tmpdir("spool")
    try:
        sp = Spool(d)
        seqs = [sp.append(_receipt(i, 800)) for i in range(4)]
        files = _record_files(d)
        _flip_byte(files[seqs[1]], -3)  # payload
        _flip_byte(files[seqs[2]], 4)  # header: seq field
        got = fwtest.pending(sp, 10)
        assert [s for s, _ in got] == [seqs[0], seqs[3]]
        assert got[1][1] == _receipt(3, 800)
        st = sp.stats()
        assert st["dropped_by"]["corrupt"] == 2 and st["count"] == 2
        assert sp.dropped_ranges() == [(seqs[1], seqs[2])]
        assert sorted(_record_files(d)) == [seqs[0], seqs[3]]
        sp = Spool(d)  # the count and ranges are persisted
        assert sp.stats()["dropped_by"]["corrupt"] == 2
        assert sp.dropped_ranges() == [(seqs[1], seqs[2])]
    finally:
        fwtest.rmtree(d)


def test_foreign_and_renamed_files_are_rejected():
    d = fwtest.tmpdir("spool")
    try:
        sp = Spool(d)
        a = sp.append(_receipt(1))
        b = sp.append(_receipt(2))
        files = _record_files(d)
        os.remove(files[b])
        os.rename(files[a], files[b])  # right bytes, wrong name
        with open(d + "/notes.txt", "wb") as f:
            f.write(b"left by someone")
        sp = Spool(d)
        assert fwtest.pending(sp, 10) == []
        assert sp.stats()["dropped_by"]["corrupt"] == 1
        assert sp.append(_receipt(3)) == b + 1
    finally:
        fwtest.rmtree(d)


def test_rotten_state_file_does_not_stop_boot():
    d = fwtest.tmpdir("spool")
    try:
        sp = Spool(d, policy="stop_capturing", max_bytes=1)
        assert sp.append(_receipt(1)) is None
        _flip_byte(d + "/state", 5)
        sp = Spool(d)
        assert sp.stats()["dropped"] == 0  # counters lost, not invented
        assert sp.append(_receipt(2)) is not None
    finally:
        fwtest.rmtree(d)


def test_drop_oldest_keeps_newest_and_reports_ranges():
    d = fwtest.tmpdir("spool")
    try:
        size = len(_receipt(0, 1000)) + 16
        sp = Spool(d, max_bytes=5 * size, compress=False)
        seqs = [sp.append(_receipt(i, 1000)) for i in range(12)]
        assert None not in seqs
        assert [s for s, _ in fwtest.pending(sp, 20)] == seqs[-5:]
        st = sp.stats()
        assert st["dropped_by"]["full_oldest"] == 7 and st["bytes"] <= 5 * size
        assert sp.dropped_ranges() == [(seqs[0], seqs[6])]
        sp = Spool(d, max_bytes=5 * size, compress=False)
        assert sp.dropped_ranges() == [(seqs[0], seqs[6])]
        sp.clear_dropped(seqs[3])
        assert sp.dropped_ranges() == [(seqs[4], seqs[6])]
        assert Spool(d).dropped_ranges() == [(seqs[4], seqs[6])]
        assert Spool(d).stats()["dropped_by"]["full_oldest"] == 7  # counters stay
    finally:
        fwtest.rmtree(d)


def test_stop_capturing_drops_new_and_still_consumes_seq():
    d = fwtest.tmpdir("spool")
    try:
        size = len(_receipt(0, 1000)) + 16
        sp = Spool(d, max_bytes=3 * size, policy="stop_capturing", compress=False)
        kept = [sp.append(_receipt(i, 1000)) for i in range(3)]
        assert sp.append(_receipt(3, 1000)) is None
        assert sp.append(_receipt(4, 1000)) is None
        assert [s for s, _ in fwtest.pending(sp, 10)] == kept
        assert sp.dropped_ranges() == [(kept[-1] + 1, kept[-1] + 2)]
        assert sp.stats()["dropped_by"]["full_new"] == 2
        sp = Spool(d, max_bytes=3 * size, policy="stop_capturing", compress=False)
        sp.ack(kept[:1])
        assert sp.append(_receipt(5, 1000)) == kept[-1] + 3  # the dropped seqs stay used
        assert sp.stats()["dropped_by"]["full_new"] == 2
    finally:
        fwtest.rmtree(d)


def test_record_bigger_than_the_spool_is_dropped_not_the_others():
    d = fwtest.tmpdir("spool")
    try:
        sp = Spool(d, max_bytes=2000, compress=False)
        a = sp.append(_receipt(1, 500))
        assert sp.append(os.urandom(3000)) is None
        assert fwtest.pending(sp, 10) == [(a, _receipt(1, 500))]
        assert sp.stats()["dropped_by"]["full_new"] == 1
    finally:
        fwtest.rmtree(d)


class SmallFS(FaultFS):
    """A filesystem of `blocks` 4 KiB blocks as statvfs sees it; every file takes whole blocks."""

    def __init__(self, directory, blocks):
        FaultFS.__init__(self)
        self.directory = directory
        self.blocks = blocks

    def statvfs(self, path):
        used = 0
        for name in _all_names(self.directory):
            st = os.stat(self.directory + "/" + name)
            used += 1 if st[0] & 0x4000 else (st[6] + 4095) // 4096
        free = self.blocks - used
        return (4096, 4096, self.blocks, free, free, 0, 0, 0, 0, 255)


def test_min_free_is_kept_on_the_filesystem():
    d = fwtest.tmpdir("spool")
    try:
        fs = SmallFS(d, 12)
        sp = Spool(d, min_free=4 * 4096, fs=fs)
        seqs = [sp.append(_receipt(i, 1000)) for i in range(12)]
        assert None not in seqs
        st = fs.statvfs(d)
        assert st[1] * st[4] >= 4 * 4096
        kept = [s for s, _ in fwtest.pending(sp, 20)]
        assert kept == seqs[-len(kept):] and len(kept) >= 4
        assert sp.stats()["dropped_by"]["full_oldest"] == 12 - len(kept)
        sp = Spool(d, min_free=4 * 4096, fs=fs, policy="stop_capturing")
        assert sp.append(_receipt(99, 1000)) is None
        assert [s for s, _ in fwtest.pending(sp, 20)] == kept
    finally:
        fwtest.rmtree(d)


def test_enospc_during_append_evicts_oldest_and_never_raises():
    d = fwtest.tmpdir("spool")
    try:
        fs = FaultFS()
        sp = Spool(d, fs=fs)
        seqs = [sp.append(_receipt(i)) for i in range(3)]
        fs.failures = 1
        s = sp.append(_receipt(3))
        assert s == seqs[-1] + 1
        assert [x for x, _ in fwtest.pending(sp, 10)] == seqs[1:] + [s]
        assert sp.stats()["dropped_by"]["full_oldest"] == 1
        fs.failures = 100  # the filesystem stays full: give up on the new record, keep counting
        assert sp.append(_receipt(4)) is None
        st = sp.stats()
        assert st["dropped_by"]["write_error"] == 1 and st["count"] >= 1
        assert os.listdir(d + "/tmp") == []
        fs.failures = 0
        assert sp.append(_receipt(5)) is not None
    finally:
        fwtest.rmtree(d)


def test_enospc_with_stop_capturing_drops_new():
    d = fwtest.tmpdir("spool")
    try:
        fs = FaultFS(failures=0)
        sp = Spool(d, fs=fs, policy="stop_capturing")
        a = sp.append(_receipt(1))
        fs.failures = 1
        assert sp.append(_receipt(2)) is None
        assert fwtest.pending(sp, 10) == [(a, _receipt(1))]
        assert sp.stats()["dropped_by"]["write_error"] == 1
        assert sp.dropped_ranges() == [(a + 1, a + 1)]
    finally:
        fwtest.rmtree(d)


def test_io_error_during_append_is_counted():
    d = fwtest.tmpdir("spool")
    try:
        fs = FaultFS(errno=_EIO, failures=1)
        sp = Spool(d, fs=fs)
        assert sp.append(_receipt(1)) is None
        b = sp.append(_receipt(2))
        assert b == 2 and sp.stats()["dropped_by"]["write_error"] == 1
        assert sp.dropped_ranges() == [(1, 1)]
    finally:
        fwtest.rmtree(d)


class EveryThirdFS(FaultFS):
    """Only every third record write succeeds (EIO otherwise): drops with gaps between."""

    def open(self, path, mode="r"):
        if "w" in mode and "/tmp/" in path and not path.endswith("state"):
            self.failures += 1
            if self.failures % 3 != 1:
                raise OSError(_EIO, "injected")
        return open(path, mode)


def test_dropped_ranges_merge_and_stay_bounded():
    d = fwtest.tmpdir("spool")
    try:
        sp = Spool(d, max_ranges=3, fs=EveryThirdFS())
        kept = [s for s in [sp.append(b"receipt %d" % i) for i in range(40)] if s is not None]
        assert kept == list(range(1, 41, 3))
        ranges = sp.dropped_ranges()
        assert len(ranges) == 3 and ranges == sorted(ranges)
        dropped = set(range(1, 41)) - set(kept)
        for s in dropped:  # every dropped seq is still covered
            assert [r for r in ranges if r[0] <= s <= r[1]], s
        assert sp.stats()["dropped_by"]["write_error"] == len(dropped)
        assert ranges == [(2, 33), (35, 36), (38, 39)]  # equal gaps: the oldest merge first
        assert Spool(d).dropped_ranges() == ranges
        sp.clear_dropped(39)
        assert sp.dropped_ranges() == [] and Spool(d).dropped_ranges() == []
    finally:
        fwtest.rmtree(d)


def test_compression_where_available():
    d = fwtest.tmpdir("spool")
    try:
        record = _receipt(7, 1500)
        sp = Spool(d)
        s = sp.append(record)
        size = os.stat(_record_files(d)[s])[6]
        if spool._deflate((record,), bytearray(256)) is None:
            assert size == len(record) + 16  # MicroPython build without compression
        else:
            assert size < len(record) // 2
        assert fwtest.pending(sp, 1) == [(s, record)]
        s2 = Spool(d, compress=False).append(record)
        assert os.stat(_record_files(d)[s2])[6] == len(record) + 16
    finally:
        fwtest.rmtree(d)


# A record file written by CPython (zlib, raw deflate, 1 KiB window): seq 0x45, compressed.
_CPYTHON_RECORD = (
    "5454010145000000210000004b18074f0b727576f50c085130e4f20c71f5d53554503054a85030d23330"
    "500093d4110600"
)


def test_reads_records_compressed_by_the_other_interpreter():
    d = fwtest.tmpdir("spool")
    try:
        from binascii import unhexlify

        os.mkdir(d + "/000001")
        with open(d + "/000001/05", "wb") as f:
            f.write(unhexlify(_CPYTHON_RECORD))
        sp = Spool(d)
        expected = b"RECEIPT 1\n" + b"ITEM-1  1 x 2.00  2.00\n" * 4
        assert fwtest.pending(sp, 5) == [(0x45, expected)]
        assert sp.append(b"next") == 0x46
    finally:
        fwtest.rmtree(d)


def test_bad_policy_is_refused():
    d = fwtest.tmpdir("spool")
    try:
        try:
            Spool(d, policy="drop_everything")
        except ValueError:
            return
        assert False, "accepted an unknown policy"
    finally:
        fwtest.rmtree(d)


def test_eviction_that_empties_a_subdirectory_keeps_appending():
    d = fwtest.tmpdir("spool")
    try:
        sp = Spool(d, max_bytes=3000, compress=False)
        for i in range(62):
            sp.append(b"r%d" % i + b"." * 900)
        # seq 63 still belongs to the first subdirectory; storing it evicts all that is there
        assert sp.append(b"big" + b"." * 2500) == 63
        assert [s for s, _ in fwtest.pending(sp, 10)] == [63]
        assert sp.append(b"next") == 64
        assert [s for s, _ in fwtest.pending(Spool(d), 10)] == [63, 64]
    finally:
        fwtest.rmtree(d)


def test_a_record_given_in_parts_is_stored_as_their_concatenation():
    d = fwtest.tmpdir("spool")
    try:
        for compress in (True, False):
            sp = Spool(d + ("/c" if compress else "/p"), compress=compress)
            whole = _receipt(1, 3000)
            parts = [whole[:1], bytearray(whole[1:700]), memoryview(whole)[700:2999],
                     whole[2999:]]
            seq = sp.append(parts)
            assert fwtest.pending(sp, 1) == [(seq, whole)]
            assert fwtest.pending(Spool(d + ("/c" if compress else "/p")), 1) == [(seq, whole)]
    finally:
        fwtest.rmtree(d)


def test_a_deflated_record_is_inflated_in_small_parts():
    # 300 receipt lines raw-deflated with a 1 KiB window, as a board with compression stores
    # them; fed to the inflater in odd-sized pieces, as read from flash
    packed = a2b_base64(
        "Xc6hsWA3DABAniqugsyTLEsyDM/Mkeu/loT+hcv2+77v15/ff/7599f8/X1//c/AiQ8ufHHjwYvfTwe/4Bf8"
        "gl/wC37BL/gFv+CX/JJf8kt+yS/5Jb/kl/yS3+F3+B1+h9/hd/gdfoff4Xf4Fb/iV/yKX/ErfsWv+BW/4nf5"
        "XX6X3+V3+V1+l9/ld/ldfs2v+TW/5tf8ml/za37Nr/kNv+E3/Ibf8Bt+w2/4Db/ht/yW3/Jbfstv+S2/5bf8"
        "lt/j9/g9fo/f4/f4PX6P3+P3fv7i+3DgxAcXvrjx4MX8gl/wC37BL/gFv+AX/IJf8Et+yS/5Jb/kl/ySX/JL"
        "fsnv8Dv8Dr/D7/A7/A6/w+/wO/yKX/ErfsWv+BW/4lf8il/xu/wuv8vv8rv8Lr/L7/K7/C6/5tf8ml/za37N"
        "r/k1v+bX/Ibf8Bt+w2/4Db/hN/yG3/Bbfstv+S2/5bf8lt/yW37L7/F7/B6/x+/xe/wev8fv8Xs/f/l9OHDi"
        "gwtf3HjwYn7BL/gFv+AX/IJf8At+wS/4Jb/kl/ySX/JLfskv+SW/5Hf4HX6H3+F3+B1+h9/hd/gdfsWv+BW/"
        "4lf8il/xK37Fr/hdfpff5Xf5XX6X3+V3+V1+l1/za37Nr/k1v+bX/Jpf82t+w2/4Db/hN/yG3/AbfsNv+C2/"
        "5bf8lt/yW37Lb/ktv+X3+D1+j9/j9/g9fo/f4/f4vR+//wA=")
    parts = [packed[k:k + 100] for k in range(0, len(packed), 100)]
    out = spool._inflate(parts)
    assert max(len(p) for p in out) <= 1024
    assert b"".join(out) == b"".join(b"%04d TOTAL 7.00\n" % k for k in range(300))


def test_set_aside_records_are_kept_apart_across_reboot_and_offered_again():
    d = fwtest.tmpdir("spool")
    try:
        sp = Spool(d, compress=False)
        seqs = [sp.append(_receipt(i)) for i in range(5)]
        before = sp.stats()["bytes"]
        assert sp.set_aside([seqs[1], seqs[3], 999]) == 2  # an unknown seq is ignored
        assert sp.set_aside([seqs[1]]) == 0                # already apart
        assert [s for s, _ in fwtest.pending(sp, 10)] == [seqs[0], seqs[2], seqs[4]]
        st = sp.stats()
        assert st["refused"] == 2 and st["count"] == 3 and st["bytes"] == before
        sp.ack([seqs[0], seqs[2], seqs[4]])
        sp = Spool(d, compress=False)  # reboot: still apart, the seqs still not reused
        assert sp.stats()["refused"] == 2 and fwtest.pending(sp, 10) == []
        assert sp.append(_receipt(9)) == seqs[-1] + 1
        assert sp.retry_refused() == 2 and sp.stats()["refused"] == 0
        assert "refused" not in os.listdir(d)  # an empty directory would hold flash blocks
        got = fwtest.pending(sp, 10)
        assert [s for s, _ in got] == [seqs[1], seqs[3], seqs[-1] + 1]
        assert got[0][1] == _receipt(1)
    finally:
        fwtest.rmtree(d)


def test_set_aside_records_count_against_max_bytes_and_are_dropped_last():
    d = fwtest.tmpdir("spool")
    try:
        size = len(_receipt(0, 1000)) + 16
        sp = Spool(d, max_bytes=4 * size, compress=False)
        seqs = [sp.append(_receipt(i, 1000)) for i in range(4)]
        sp.set_aside(seqs[:2])
        newer = [sp.append(_receipt(10 + i, 1000)) for i in range(2)]
        # the two pending records went first, although the set-aside ones are older
        assert sp.stats()["refused"] == 2 and sp.stats()["bytes"] <= 4 * size
        assert [s for s, _ in fwtest.pending(sp, 10)] == newer
        assert sp.dropped_ranges() == [(seqs[2], seqs[3])]
        sp.append(_receipt(20, 1000))
        assert sp.stats()["refused"] == 2  # again a pending record went
        # three records' worth: the pending ones do not make room enough, the oldest set-aside
        # one goes too
        assert sp.append(_receipt(21, 3 * size - 16)) is not None
        assert sp.stats()["refused"] == 1 and sp.stats()["count"] == 1
        assert sp.dropped_ranges() == [(seqs[0], seqs[0]), (seqs[2], newer[1] + 1)]
    finally:
        fwtest.rmtree(d)


def test_a_receipt_written_to_scratch_is_stored_whole_and_its_file_goes():
    """A long receipt's start goes to a scratch file as it prints; append() copies it into the
    record through a small buffer (CRC over the whole), with or without compression, and a
    record larger than the uplink's buffer comes back as a FilePart that reads the same bytes."""
    d = fwtest.tmpdir("spool")
    try:
        for compress in (False, True):
            sp = Spool(d, compress=compress)
            scratch = sp.scratch()
            head = b'{"lines":[' + b",".join(b'"line %d"' % k for k in range(900))
            for k in range(0, len(head), 300):
                assert scratch.write(head[k:k + 300])
            rest = b'],"device":"d"}'
            seq = sp.append([scratch, rest])
            scratch.remove()
            assert os.listdir(d + "/tmp") == []
            assert fwtest.pending(sp, 1) == [(seq, head + rest)]
            [(got, parts)] = sp.pending(1, None, bytearray(1024))
            assert got == seq and bytes(protocol.joined(parts)) == head + rest
            sp.ack([seq])
    finally:
        fwtest.rmtree(d)


def test_a_scratch_the_flash_refuses_says_so_and_its_record_is_dropped_counted():
    """Write errors never raise into capture: the scratch says it failed, and a record built
    on it is dropped as a write error (counted) instead of being stored short."""
    d = fwtest.tmpdir("spool")
    try:
        sp = Spool(d, compress=False)
        scratch = sp.scratch()
        fwtest.rmtree(d + "/tmp")          # the flash loses the directory under it
        assert not scratch.write(b'{"lines":["a"') and scratch.failed
        assert sp.append([scratch, b"]}"]) is None
        assert sp.stats()["dropped_by"]["write_error"] == 1
    finally:
        fwtest.rmtree(d)
