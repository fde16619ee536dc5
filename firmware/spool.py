"""Durable receipt spool on flash: the queue between receipt assembly and the uplink.

Failure assumptions (what can happen to the board's LittleFS v2 flash):
- Power is cut at any flash program or erase, possibly tearing it half-way. LittleFS keeps the
  last committed state: a closed file is whole, rename and remove are atomic, an unclosed file
  is lost or left empty.
- The filesystem fills up: writes raise OSError(ENOSPC), possibly on a record smaller than the
  free space we believed in.
- A stored record rots (flipped bits, truncated or foreign file).

What the spool guarantees, given those:
- A record whose append() returned a seq survives any later power cut until it is acked or
  dropped for room. Every drop is counted by reason and its seq kept in a bounded list of ranges
  that is persisted *before* the record is deleted (a cut in between can over-report a drop,
  never hide one).
- Seqs strictly increase and are never reused, across reboots and power cuts, including when
  every record was acked before the reboot.
- append() never raises and never blocks on a full flash; pending() never returns a record
  that fails its CRC (it is counted, then removed) and never raises on bad data.
- Boot recovery lists directories only (no payload reads): time grows with the number of files.
- A record never has to fit the heap: a long receipt's lines go to flash as they print
  (scratch()) and append() copies them into the record through one small buffer; pending()
  hands the uplink a record larger than its buffer as a FilePart it reads while sending.
- A record the server refused for good (set_aside()) stays on flash, apart: pending() no longer
  offers it, it counts against max_bytes and is dropped only when no deliverable record is left
  to drop; retry_refused() (an operator's request) makes it pending again.

On-flash layout, under the spool directory:
  state           seq floor, drop counters and dropped ranges (CRC-checked); rewritten only
                  when records are dropped or reported drops are cleared
  XXXXXX/YY       one record: seq = XXXXXX * 64 + YY (hex); 64 per directory, because LittleFS
                  operations slow down with the number of entries in a directory
  refused/XXXXXXXX  a record the server refused (same file, renamed here: atomic, no copy);
                  the directory exists only while it holds one (each costs metadata blocks)
  tmp/            files being written (a record, the state), renamed into place once closed,
                  and tmp/rN: a receipt in progress, its lines written as they print
                  (Spool.scratch()); emptied at boot. Renaming out of this small directory is
                  also ~8x cheaper than renaming within a large one (LittleFS walks the source
                  directory).
  last.XXXXXXXX   empty file: the seq of the newest record after that record was acked, so a
                  reboot cannot hand it out again (cheaper than a state rewrite per drain);
                  removed by the next append
Record file = 16-byte header + payload. Header (little-endian): b"TT", version 1, flags
(bit 0: payload is raw deflate with a 1 KiB window), seq u32, payload length u32, CRC32 of
header bytes 0..11 followed by the payload.
"""
import io
import os
import struct
from binascii import crc32

from .compat import const

try:
    import deflate

    _DEFLATE_WRITES = hasattr(deflate.DeflateIO, "write")  # compression is a build option
    zlib = None
except ImportError:  # CPython
    deflate = None
    import zlib

_HEAD = "<2sBBII"  # magic, version, flags, seq, payload length; then the u32 CRC
_HEAD_SIZE = const(16)
_VERSION = const(1)
_DEFLATED = const(1)
_WBITS = const(10)  # 1 KiB window: small RAM for the decoder on the board
_PIECE = const(256)  # a record is read in parts of this size
_SHIFT = const(6)  # 64 seqs per subdirectory
_MASK = const(63)
_STATE = "<4sIH"  # magic, seq floor, number of ranges; then counters, ranges, CRC
_STATE_MAGIC = b"TTS1"
_S_IFDIR = const(0x4000)
_ENOSPC = const(28)  # not in MicroPython's errno module; same value on LittleFS and Linux

_EIO = const(5)

_NO_ROOM = object()  # _read(): the record does not fit the buffer given
REASONS = ("full_oldest", "full_new", "corrupt", "write_error")


def _chunks(parts, buf):
    """The bytes of parts in order: each part itself, or, for a part made as it is read
    (FilePart, protocol.Base64Part), its pieces (read through buf)."""
    for p in parts:
        if hasattr(p, "pieces"):
            yield from p.pieces(buf)
        else:
            yield p


def _deflate(parts, buf):
    """Raw-deflated bytes of the parts joined, or None where this interpreter cannot compress."""
    if zlib:
        c = zlib.compressobj(9, zlib.DEFLATED, -_WBITS)
        return b"".join([c.compress(p) for p in _chunks(parts, buf)]) + c.flush()
    if not _DEFLATE_WRITES:
        return None
    out = io.BytesIO()
    with deflate.DeflateIO(out, deflate.RAW, _WBITS) as d:
        for p in _chunks(parts, buf):
            d.write(p)
    return out.getvalue()


def _length(parts):
    n = 0
    for p in parts:
        n += len(p)
    return n


def _inflate(parts):
    """The raw-deflated parts inflated, as parts of at most _PIECE bytes."""
    if zlib:
        d = zlib.decompressobj(-_WBITS)
        data = b"".join([d.decompress(p) for p in parts]) + d.flush()
        return [data[k:k + _PIECE] for k in range(0, len(data), _PIECE)]
    out = []
    with deflate.DeflateIO(_PartsReader(parts), deflate.RAW, _WBITS) as d:
        while True:
            piece = d.read(_PIECE)
            if not piece:
                return out
            out.append(piece)


class FilePart:
    """Bytes of a file standing in for a record part the heap should not hold: len() is their
    size, pieces(buf) reads them through buf. protocol.joined() and the MQTT link take it
    where they take bytes."""

    def __init__(self, opener, path, start=0, size=0):
        self._open = opener
        self._path = path
        self._start = start
        self.size = size

    def __len__(self):
        return self.size

    def pieces(self, buf):
        """The bytes, in order, as memoryviews of buf (each valid until the next one); raises
        OSError if the file is gone or shorter than it was."""
        view = memoryview(buf)
        with self._open(self._path, "rb") as f:
            if self._start:
                f.seek(self._start)
            left = self.size
            while left:
                n = f.readinto(view[:min(left, len(view))])
                if not n:
                    raise OSError(_EIO)
                left -= n
                yield view[:n]


class Scratch(FilePart):
    """The start of a receipt's record, written to flash while the receipt prints (Spool
    .scratch()): a long receipt then holds a few hundred bytes of heap, not its whole text.
    Given to Spool.append() as a record's first part. A write error is kept, never raised
    (capture goes on): `failed` then says the file does not hold what was written."""

    def __init__(self, opener, remover, path):
        super().__init__(opener, path)
        self._remove = remover
        self._f = None
        self.failed = False

    def write(self, data):
        """Appends data; False (and failed) if the flash refused it."""
        if self.failed:
            return False
        try:
            if self._f is None:
                self._f = self._open(self._path, "wb")
            self._f.write(data)
        except OSError:
            self.failed = True
            return False
        self.size += len(data)
        return True

    def pieces(self, buf):
        """As FilePart.pieces(), once the file is closed for writing."""
        self._close()
        if self.failed:
            raise OSError(_EIO)
        return super().pieces(buf) if self.size else iter(())

    def remove(self):
        """Deletes the file: the receipt was stored (or given up)."""
        self._close()
        try:
            self._remove(self._path)
        except OSError:
            pass  # never written
        self.size = 0
        self.failed = False

    def _close(self):
        if self._f is not None:
            f, self._f = self._f, None
            try:
                f.close()
            except OSError:
                self.failed = True


class _PartsReader(io.IOBase):
    """A stream over a list of bytes parts (for DeflateIO), without joining them."""

    def __init__(self, parts):
        self._parts = parts
        self._k = 0
        self._pos = 0

    def readinto(self, buf):
        if self._k >= len(self._parts):
            return 0
        part = self._parts[self._k]
        n = min(len(buf), len(part) - self._pos)
        buf[:n] = memoryview(part)[self._pos:self._pos + n]
        self._pos += n
        if self._pos >= len(part):
            self._k += 1
            self._pos = 0
        return n


def _bisect(seqs, seq):
    """Position of seq (or where it would go) in an ascending list."""
    lo, hi = 0, len(seqs)
    while lo < hi:
        mid = (lo + hi) >> 1
        if seqs[mid] < seq:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _insort(seqs, seq):
    """Inserts seq into an ascending list; returns its position."""
    i = _bisect(seqs, seq)
    seqs.insert(i, seq)
    return i


def _entries(fs, path):
    """List of (name, is_dir, size) in path; size comes from ilistdir where the VFS gives it."""
    out = []
    names = fs.ilistdir(path) if hasattr(fs, "ilistdir") else ((n,) for n in fs.listdir(path))
    for e in names:
        if len(e) < 4:  # VfsPosix and CPython: no size in the listing
            st = fs.stat(path + "/" + e[0])
            e = (e[0], st[0] & 0xF000, 0, st[6])
        out.append((e[0], e[1] == _S_IFDIR, e[3]))
    return out


class Spool:
    """Receipt records kept one file each, in seq order, until the uplink acks them."""

    def __init__(self, directory, max_bytes=None, min_free=64 * 1024, policy="drop_oldest",
                 compress=True, max_ranges=32, fs=os):
        """Open the spool in `directory` (created if missing) and recover it after any reset.

        max_bytes: cap on stored record bytes (headers included); None = only min_free.
        min_free: filesystem bytes always left free (LittleFS needs spare blocks to commit).
        policy: when full, "drop_oldest" evicts the oldest records, "stop_capturing" drops
        the new one. compress: deflate records where the firmware can. max_ranges: bound on the
        list of dropped seq ranges. fs: os-like object (os, or a VFS object) for tests.
        """
        if policy not in ("drop_oldest", "stop_capturing"):
            raise ValueError("policy")
        self._dir = directory.rstrip("/")
        self._fs = fs
        self._open = open if fs is os else fs.open  # CPython's os.open is the fd-level call
        self._max_bytes = max_bytes
        self._min_free = min_free
        self._evicts = policy == "drop_oldest"
        self._compress = compress
        self._max_ranges = max_ranges
        self._seqs = []  # stored seqs, ascending
        self._sizes = []  # file size of each, same order
        self._refused = []  # seqs set aside (refused by the server), ascending
        self._refused_sizes = []  # file size of each, same order (in _bytes too)
        self._bytes = 0
        self._free = None  # estimated free filesystem bytes; None = ask statvfs
        self._block = 4096
        self._made_dir = -1  # subdirectory known to exist
        self._marker = None  # seq in the last.XXXXXXXX file, if there is one
        self._piece = bytearray(_PIECE)  # FileParts are copied through it (appends only)
        self._scratches = 0
        self._recover()

    # -- public API

    def scratch(self):
        """A new file for a receipt in progress to write its record's start to (a Scratch,
        given back to append() as the record's first part, then removed). In tmp/: a receipt
        cut short by a reset leaves nothing behind after the next boot."""
        self._scratches += 1
        return Scratch(self._open, self._fs.remove,
                       "%s/tmp/r%x" % (self._dir, self._scratches & 0xFFFF))

    def append(self, record):
        """Store one receipt record durably; return its seq, or None if it was dropped.

        record: bytes, or a list of parts stored as their concatenation: bytes, or parts made
        as they are read (a Scratch, protocol.Base64Part): on the board a heap with room for
        many small pieces may have no single block for a whole record.

        Never raises. A dropped new record (spool full under stop_capturing, a record larger
        than the whole spool, or a filesystem error) still consumes its seq and is reported in
        dropped_ranges(), so the server sees a counted gap instead of an unexplained one.
        """
        seq = self._next
        self._next = seq + 1
        try:
            head, payload = self._encode(seq, record if isinstance(record, list) else (record,))
        except OSError:  # a FilePart could not be read back
            self._drop([seq], "write_error")
            return None
        size = _HEAD_SIZE + _length(payload)
        if not self._make_room(size):
            self._drop([seq], "full_new")
            return None
        retry = True
        while True:
            try:
                self._write(seq, head, payload)
                break
            except OSError as e:
                self._remove(self._tmp(seq))
                self._free = None
                # Full after all (our free-space figure is an estimate): evict room for the
                # record once and retry; any other error, or a second one, drops the record.
                if not (retry and e.errno == _ENOSPC and self._evicts
                        and self._evict(0, self._alloc(size))):
                    self._drop([seq], "write_error")
                    return None
                retry = False
        self._seqs.append(seq)
        self._sizes.append(size)
        self._bytes += size
        if self._free is not None:
            self._free -= self._alloc(size)
        if self._marker is not None:  # seq is now on disk as the newest: drop the marker
            self._remove(self._last(self._marker))
            self._marker = None
        return seq

    def pending(self, limit, max_bytes=None, into=None):
        """The oldest unacked records as [(seq, record parts)], at most `limit` of them (the
        parts of a record joined are the bytes given to append()).

        max_bytes bounds the sum of record lengths (the first record is always included).
        into: a buffer allocated once (the uplink's): records are read into it, each one part
        (a memoryview of it, valid until the next call); a record that does not fit what is
        left ends the batch, or, the first one, comes as its first bytes and a FilePart of the
        rest, read again while it is sent (its CRC checked here).
        Records failing their checks are counted as "corrupt", removed and skipped.
        """
        out = []
        bad = []
        total = 0
        for seq in self._seqs:
            if len(out) >= limit:
                break
            record = self._read(seq, into, total)
            if record is None:
                bad.append(seq)
                continue
            if record is _NO_ROOM:
                if out:
                    break
                record = self._read_large(seq)
                if record is None:
                    bad.append(seq)
                    continue
            size = _length(record)
            if max_bytes is not None and out and total + size > max_bytes:
                break
            out.append((seq, record))
            total += size
        if bad:
            self._drop(bad, "corrupt")
        return out

    def ack(self, seqs):
        """Delete exactly these records (committed by the server); unknown seqs are ignored."""
        for seq in seqs:
            i = self._index(seq)
            if i == len(self._seqs) or self._seqs[i] != seq:
                continue
            if seq == self._next - 1 and self._floor < self._next:
                self._mark(seq)  # its file is the only trace of the newest seq
            self._remove(self._path(seq))  # if that fails, it comes back: at-least-once
            self._forget(i)

    def stats(self):
        """Counters for monitoring: count (pending), bytes (refused included), refused, oldest,
        newest, next_seq, free, dropped..."""
        seqs = self._seqs
        try:
            free = self._statvfs()
        except OSError:
            free = None
        return {
            "count": len(seqs),
            "bytes": self._bytes,
            "refused": len(self._refused),
            "oldest": seqs[0] if seqs else None,
            "newest": seqs[-1] if seqs else None,
            "next_seq": self._next,
            "free": free,
            "dropped": sum(self._dropped.values()),
            "dropped_by": dict(self._dropped),
            "dropped_ranges": self.dropped_ranges(),
        }

    def set_aside(self, seqs):
        """Keep these pending records apart: the server refused them for good. They stay on
        flash (and in max_bytes) but pending() skips them until retry_refused(); returns how
        many were set aside (unknown or already set-aside seqs are ignored)."""
        done = 0
        for seq in seqs:
            i = self._index(seq)
            if i == len(self._seqs) or self._seqs[i] != seq:
                continue
            if not self._refused:
                try:
                    self._fs.mkdir(self._dir + "/refused")
                except OSError:
                    pass  # exists already (a real failure shows up at rename)
            try:
                self._fs.rename(self._path(seq), self._refused_path(seq))
            except OSError:
                continue  # still pending: offered again, refused again
            size = self._sizes[i]
            self._seqs.pop(i)
            self._sizes.pop(i)
            j = _insort(self._refused, seq)
            self._refused_sizes.insert(j, size)
            self._prune(seq >> _SHIFT)
            done += 1
        return done

    def retry_refused(self):
        """Make every set-aside record pending again (the operator asked); returns how many."""
        done = 0
        while self._refused:
            seq = self._refused[-1]
            sub = seq >> _SHIFT
            try:
                self._fs.mkdir("%s/%06x" % (self._dir, sub))
            except OSError:
                pass  # exists already
            try:
                self._fs.rename(self._refused_path(seq), self._path(seq))
            except OSError:
                break  # stays set aside; the operator can ask again
            self._refused.pop()
            size = self._refused_sizes.pop()
            i = _insort(self._seqs, seq)
            self._sizes.insert(i, size)
            done += 1
        self._prune_refused()
        return done

    def _prune_refused(self):
        """Remove the refused directory once it holds no record (it costs metadata blocks)."""
        if not self._refused:
            try:
                self._fs.rmdir(self._dir + "/refused")
            except OSError:
                pass  # gone already, or holds files not ours

    def dropped_ranges(self):
        """Dropped seqs as [(first, last)], ascending. Exact until the list overflows
        max_ranges; then the two closest ranges merge and a range may also cover seqs that
        were delivered or are still pending (a server treats only the seqs it lacks as dropped).
        """
        return [(r[0], r[1]) for r in self._ranges]

    def clear_dropped(self, upto):
        """Forget dropped ranges up to seq `upto`, once reported upstream (counters stay)."""
        ranges = [[max(a, upto + 1), b] for a, b in self._ranges if b > upto]
        if ranges != self._ranges:
            self._ranges = ranges
            self._save_state()

    # -- records on flash

    def _path(self, seq):
        return "%s/%06x/%02x" % (self._dir, seq >> _SHIFT, seq & _MASK)

    def _tmp(self, seq):
        return "%s/tmp/%08x" % (self._dir, seq)

    def _refused_path(self, seq):
        return "%s/refused/%08x" % (self._dir, seq)

    def _last(self, seq):
        return "%s/last.%08x" % (self._dir, seq)

    def _mark(self, seq):
        """Record seq as the newest handed out, before its record file goes."""
        try:
            self._open(self._last(seq), "wb").close()
        except OSError:
            self._save_state()  # the state's seq floor does the same job, at a higher cost
            return
        if self._marker is not None:
            self._remove(self._last(self._marker))
        self._marker = seq

    def _encode(self, seq, parts):
        """(header, payload parts) of a record given as parts."""
        flags = 0
        payload = parts
        if self._compress:
            packed = _deflate(parts, self._piece)
            if packed is not None and len(packed) < _length(parts):
                flags, payload = _DEFLATED, (packed,)
        head = struct.pack(_HEAD, b"TT", _VERSION, flags, seq, _length(payload))
        crc = crc32(head)
        for p in _chunks(payload, self._piece):
            crc = crc32(p, crc)
        return head + struct.pack("<I", crc), payload

    def _write(self, seq, head, payload):
        # Write a temporary file, close it, then rename: LittleFS commits the data at close and
        # makes the rename atomic, so a record file is either absent or whole (on any FS).
        sub = seq >> _SHIFT
        if sub != self._made_dir:
            try:
                self._fs.mkdir("%s/%06x" % (self._dir, sub))
            except OSError:
                pass  # exists already (a real failure shows up at open)
            old, self._made_dir = self._made_dir, sub
            self._prune(old)  # no longer written to: remove it if it holds nothing
            self._free = None  # a directory costs metadata blocks: re-measure
        with self._open(self._tmp(seq), "wb") as f:
            f.write(head)
            for p in _chunks(payload, self._piece):
                f.write(p)
        self._fs.rename(self._tmp(seq), self._path(seq))

    def _read(self, seq, into=None, at=0):
        """The record as a list of parts of at most _PIECE bytes (a heap too fragmented for
        a block of the record's size still has room for these), or, into given and the
        record stored plain, as one memoryview of into[at:] (_NO_ROOM when it does not fit
        there); None if the file is missing or fails any check."""
        try:
            with self._open(self._path(seq), "rb") as f:
                head = f.read(_HEAD_SIZE)
                if len(head) < _HEAD_SIZE:
                    return None
                magic, version, flags, stored_seq, length = struct.unpack_from(_HEAD, head)
                if (magic != b"TT" or version != _VERSION or flags & ~_DEFLATED
                        or stored_seq != seq):
                    return None
                crc = crc32(memoryview(head)[:12])
                if into is not None and not flags:     # a deflated one is inflated in parts
                    if at + length > len(into):
                        return _NO_ROOM
                    view = memoryview(into)[at:at + length]
                    if f.readinto(view) != length or f.read(1):
                        return None
                    if struct.unpack_from("<I", head, 12)[0] != crc32(view, crc):
                        return None
                    return [view]
                parts = []
                while True:
                    piece = f.read(_PIECE)
                    if not piece:
                        break
                    crc = crc32(piece, crc)
                    parts.append(piece)
        except OSError:
            return None
        if _length(parts) != length or struct.unpack_from("<I", head, 12)[0] != crc:
            return None
        if not flags:
            return parts
        try:
            return _inflate(parts)
        except Exception:  # any decoder error means a bad record; it passed the CRC, so rare
            return None

    def _read_large(self, seq):
        """A record too large for the uplink's buffer: [its first bytes, a FilePart of the
        rest] once its CRC checks (read through a small buffer); a deflated one in parts (as
        _read()); None if it fails a check."""
        path = self._path(seq)
        try:
            with self._open(path, "rb") as f:
                head = f.read(_HEAD_SIZE)
                if len(head) < _HEAD_SIZE:
                    return None
                magic, version, flags, stored_seq, length = struct.unpack_from(_HEAD, head)
                if flags or length <= _PIECE:
                    return self._read(seq)
                if magic != b"TT" or version != _VERSION or stored_seq != seq:
                    return None
                first = f.read(_PIECE)
                f.seek(_HEAD_SIZE + length)
                if f.read(1):           # longer than its header says
                    return None
            rest = FilePart(self._open, path, _HEAD_SIZE + len(first), length - len(first))
            crc = crc32(first, crc32(memoryview(head)[:12]))
            for piece in rest.pieces(self._piece):
                crc = crc32(piece, crc)
        except OSError:                 # shorter than its header says, or unreadable
            return None
        if struct.unpack_from("<I", head, 12)[0] != crc:
            return None
        return [first, rest]

    def _remove(self, path):
        try:
            self._fs.remove(path)
        except OSError:
            pass

    # -- bookkeeping in RAM

    def _index(self, seq):
        """Position of seq (or where it would go) in the sorted list of pending seqs."""
        return _bisect(self._seqs, seq)

    def _forget(self, i):
        seq = self._seqs.pop(i)
        size = self._sizes.pop(i)
        self._bytes -= size
        if self._free is not None:
            self._free += self._alloc(size)
        self._prune(seq >> _SHIFT)

    def _prune(self, sub):
        """Remove a subdirectory that holds no record any more (each costs metadata blocks),
        unless appends are using it."""
        if sub < 0 or sub == self._made_dir or sub == self._next >> _SHIFT:
            return
        i = self._index(sub << _SHIFT)
        if i < len(self._seqs) and self._seqs[i] >> _SHIFT == sub:
            return
        try:
            self._fs.rmdir("%s/%06x" % (self._dir, sub))
        except OSError:
            pass  # holds files not ours, or gone

    def _alloc(self, size):
        # LittleFS gives every file of more than a few dozen bytes whole blocks of its own.
        return -(-size // self._block) * self._block

    def _statvfs(self):
        st = self._fs.statvfs(self._dir)
        self._block = st[1] or 4096
        # LittleFS counts used blocks by a walk that can overcount; past the size of the
        # filesystem the free count wraps around to a huge number: that means full.
        return st[1] * st[4] if st[4] <= st[2] else 0

    def _make_room(self, size):
        """True when a record of `size` bytes fits, once the policy has evicted what it may."""
        need = self._alloc(size) + self._min_free
        cap = self._max_bytes
        if self._free is None or self._free < need:
            try:
                self._free = self._statvfs()
            except OSError:
                self._free = need  # cannot tell: try, and let ENOSPC decide
        over_bytes = 0 if cap is None else self._bytes + size - cap
        over_free = need - self._free
        if over_bytes <= 0 and over_free <= 0:
            return True
        return self._evicts and self._evict(over_bytes, over_free)

    def _evict(self, over_bytes, over_free):
        """Drop the oldest records to cover both excesses, pending ones first and set-aside
        ones only after them; False (and drop none) if all would not do."""
        n = k = 0
        while (over_bytes > 0 or over_free > 0) and n < len(self._sizes):
            over_bytes -= self._sizes[n]
            over_free -= self._alloc(self._sizes[n])
            n += 1
        while (over_bytes > 0 or over_free > 0) and k < len(self._refused_sizes):
            over_bytes -= self._refused_sizes[k]
            over_free -= self._alloc(self._refused_sizes[k])
            k += 1
        if over_bytes > 0 or over_free > 0:
            return False  # bigger than the whole spool: keep what is there
        self._drop(self._seqs[:n] + self._refused[:k], "full_oldest")
        return True

    def _drop(self, seqs, reason):
        """Count and record dropped seqs, persist that, then delete whichever are stored."""
        for seq in seqs:
            self._dropped[reason] += 1
            self._note_range(seq)
        self._save_state()
        for seq in seqs:
            i = self._index(seq)
            if i < len(self._seqs) and self._seqs[i] == seq:
                self._remove(self._path(seq))
                self._forget(i)
                continue
            i = _bisect(self._refused, seq)
            if i < len(self._refused) and self._refused[i] == seq:
                self._remove(self._refused_path(seq))
                self._refused.pop(i)
                size = self._refused_sizes.pop(i)
                self._bytes -= size
                if self._free is not None:
                    self._free += self._alloc(size)
                self._prune_refused()

    def _note_range(self, seq):
        r = self._ranges
        i = len(r)
        while i and r[i - 1][0] > seq:  # drops usually extend the last range: scan from the end
            i -= 1
        if i and r[i - 1][1] + 1 >= seq:
            i -= 1
            r[i][1] = max(r[i][1], seq)
        else:
            r.insert(i, [seq, seq])
        if i + 1 < len(r) and r[i + 1][0] <= r[i][1] + 1:
            r[i][1] = max(r[i][1], r.pop(i + 1)[1])
        if len(r) > self._max_ranges:  # stay bounded: merge the two closest ranges
            j = min(range(len(r) - 1), key=lambda k: r[k + 1][0] - r[k][1])
            r[j][1] = r.pop(j + 1)[1]

    # -- state file and boot recovery

    def _save_state(self):
        """Persist the seq floor, counters and ranges (tmp + rename). On a write error the
        state stays in RAM only and is retried with the next drop."""
        self._floor = self._next
        body = struct.pack(_STATE, _STATE_MAGIC, self._floor, len(self._ranges))
        body += struct.pack("<%dI" % len(REASONS), *[self._dropped[k] for k in REASONS])
        for first, last in self._ranges:
            body += struct.pack("<II", first, last)
        tmp = self._dir + "/tmp/state"
        try:
            with self._open(tmp, "wb") as f:
                f.write(body)
                f.write(struct.pack("<I", crc32(body)))
            self._fs.rename(tmp, self._dir + "/state")
        except OSError:
            self._floor = 0
            self._remove(tmp)

    def _load_state(self):
        self._floor = 1
        self._dropped = dict.fromkeys(REASONS, 0)
        self._ranges = []
        try:
            with self._open(self._dir + "/state", "rb") as f:
                data = f.read()
        except OSError:
            return  # a new spool
        ranges_at = 10 + 4 * len(REASONS)
        if len(data) < ranges_at + 4:
            return
        magic, floor, n = struct.unpack_from(_STATE, data)
        end = ranges_at + 8 * n
        if (magic != _STATE_MAGIC or len(data) != end + 4
                or struct.unpack_from("<I", data, end)[0] != crc32(memoryview(data)[:end])):
            return  # rotten state: lose the counters rather than refuse to boot
        self._floor = floor
        counts = struct.unpack_from("<%dI" % len(REASONS), data, 10)
        for k, v in zip(REASONS, counts):
            self._dropped[k] = v
        for i in range(n):
            self._ranges.append(list(struct.unpack_from("<II", data, ranges_at + 8 * i)))

    def _recover(self):
        fs, top = self._fs, self._dir
        for path in (top, top + "/tmp"):
            try:
                fs.mkdir(path)
            except OSError:
                pass  # exists
        for name, _, _ in _entries(fs, top + "/tmp"):  # writes cut before their rename
            self._remove(top + "/tmp/" + name)
        self._load_state()
        found = []  # (seq, size) of every record file
        markers = []
        empty = []  # subdirectories without records
        for name, is_dir, _ in _entries(fs, top):
            try:
                if name[:5] == "last.":
                    markers.append(int(name[5:], 16))
                    continue
                sub = int(name, 16)
            except ValueError:
                continue  # state, tmp, or not ours
            if not is_dir or len(name) != 6:
                continue
            before = len(found)
            for fname, _, size in _entries(fs, "%s/%s" % (top, name)):
                try:
                    low = int(fname, 16)
                except ValueError:
                    continue
                if len(fname) == 2 and low <= _MASK:
                    found.append(((sub << _SHIFT) | low, size))
            if len(found) == before:
                empty.append(sub)
        found.sort()  # listing order is not guaranteed to be numeric
        self._seqs = [seq for seq, _ in found]
        self._sizes = [size for _, size in found]
        aside = []
        try:
            listed = _entries(fs, top + "/refused")
        except OSError:
            listed = ()  # none set aside
        for name, _, size in listed:
            try:
                aside.append((int(name, 16), size))
            except ValueError:
                continue  # not ours
        aside.sort()
        self._refused = [seq for seq, _ in aside]
        self._refused_sizes = [size for _, size in aside]
        self._bytes = sum(self._sizes) + sum(self._refused_sizes)
        newest = max([self._floor - 1] + markers + self._seqs[-1:] + self._refused[-1:])
        self._next = newest + 1
        for seq in markers:  # keep only a marker that alone still carries the newest seq
            if seq == newest and not (self._seqs and self._seqs[-1] == seq):
                self._marker = seq
            else:
                self._remove(self._last(seq))
        for sub in empty:
            self._prune(sub)
        # a record file shorter than a header cannot be one we closed
        bad = [seq for seq, size in found + aside if size < _HEAD_SIZE]
        if bad:
            self._drop(bad, "corrupt")
