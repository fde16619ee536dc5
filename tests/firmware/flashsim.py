"""Simulated NOR flash for VfsLfs2: counts wear, cuts power at the k-th program or erase.

Geometry as on the ESP32: 4 KiB erase blocks, extended block protocol (readblocks/writeblocks
with byte offsets, ioctl 6 = erase). NOR semantics: erase sets a block to 0xFF, program can
only clear bits (an AND); programs over non-erased bytes are counted in `reprograms`.

Power loss: arm(k) cuts the power at the k-th program/erase from now; with torn=True half of
that operation reaches the image first (half the bytes programmed, half the block erased).
From the cut on, nothing reaches the image and every block access fails with -EIO until
device() powers on again. Failing with an error code (rather than raising through LittleFS's
C code) lets LittleFS unwind and close its files, so no file finaliser runs later against a
dead mount. The code under test sees OSError(EIO) and carries on; the harness calls check()
after each call, which raises PowerCut once the power has gone, and disregards whatever that
call returned: on a board nothing would have run after the cut.
Runs only under MicroPython (vfs.VfsLfs2); importable on CPython, where VFS is None.
"""
try:
    import vfs

    VFS = vfs.VfsLfs2
except (ImportError, AttributeError):
    vfs = VFS = None

_EIO = -5


class PowerCut(Exception):
    """The power went during the last call (raised by FlashSim.check)."""


class _Device:
    """The block device one mount sees; fails once the power went or the flash rebooted."""

    def __init__(self, flash, epoch):
        self._flash = flash
        self._epoch = epoch

    def _dead(self):
        return self._flash.off or self._flash.epoch != self._epoch

    def readblocks(self, block, buf, offset=0):
        flash = self._flash
        if self._dead():
            return _EIO
        start = block * flash.block_size + offset
        buf[:] = flash.mv[start:start + len(buf)]

    def writeblocks(self, block, buf, offset=None):
        flash = self._flash
        if self._dead():
            return _EIO
        if offset is None:  # simple protocol: whole blocks, erase implied
            for i in range(len(buf) // flash.block_size):
                if flash.erase(block + i):
                    return _EIO
            offset = 0
        if flash.program(block * flash.block_size + offset, buf):
            return _EIO

    def ioctl(self, op, arg):
        flash = self._flash
        if op == 4:
            return flash.blocks
        if op == 5:
            return flash.block_size
        if op == 6:
            if self._dead() or flash.erase(arg):
                return _EIO
        return 0


class FlashSim:
    def __init__(self, blocks=256, block_size=4096):
        self.blocks = blocks
        self.block_size = block_size
        self.image = bytearray(blocks * block_size)
        self.mv = memoryview(self.image)
        self._erased = b"\xff" * block_size
        for i in range(blocks):  # a new chip comes erased
            self.mv[i * block_size:(i + 1) * block_size] = self._erased
        self.epoch = 0
        self.off = False
        self._cut = None
        self._torn = False
        self.reset_counters()

    def reset_counters(self):
        self.ops = 0  # programs + erases since the last reset (arm() counts from here too)
        self.programs = 0
        self.erases = 0
        self.programmed = 0  # bytes
        self.reprograms = 0

    def arm(self, k, torn=False):
        """Cut the power at the k-th program/erase from now (0 = the next one)."""
        self._cut = self.ops + k
        self._torn = torn

    def disarm(self):
        self._cut = None

    def _tick(self):
        if self._cut is not None and self.ops == self._cut:
            self._cut = None
            self.off = True
            return True
        self.ops += 1
        return False

    def check(self):
        """Raise PowerCut if the power has gone (call after each call under test)."""
        if self.off:
            raise PowerCut

    def program(self, start, buf):
        """Program bytes at a flash address; True when the power went instead."""
        n = len(buf)
        cut = self._tick()
        if cut:
            if not self._torn:
                return True
            n //= 2
        end = start + n
        if self.image[start:end] == self._erased[:n]:
            self.mv[start:end] = memoryview(buf)[:n]
        else:
            self.reprograms += 1
            for i in range(n):
                self.image[start + i] &= buf[i]
        if cut:
            return True
        self.programs += 1
        self.programmed += n
        return False

    def erase(self, block):
        """Erase one block to 0xFF; True when the power went instead."""
        start = block * self.block_size
        n = self.block_size
        cut = self._tick()
        if cut:
            if not self._torn:
                return True
            n //= 2
        self.mv[start:start + n] = self._erased[:n]
        if cut:
            return True
        self.erases += 1
        return False

    def device(self):
        """Power on: a fresh block device for one mount (older ones stop working)."""
        self.epoch += 1
        self.off = False
        return _Device(self, self.epoch)

    def format(self):
        VFS.mkfs(self.device())

    def mount(self, path="/flash"):
        """(Re)boot: unmount whatever is at path, power on, mount the image there."""
        self.unmount(path)
        vfs.mount(VFS(self.device()), path)

    def unmount(self, path="/flash"):
        try:
            vfs.umount(path)
        except OSError:
            pass

    def snapshot(self, into=None):
        """A copy of the image; `into` (a bytearray of the same size) avoids a new allocation."""
        if into is None:
            return bytes(self.image)
        into[:] = self.image
        return into

    def restore(self, snap):
        self.mv[:] = snap
