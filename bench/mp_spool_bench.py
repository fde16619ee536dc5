"""MicroPython side of bench_spool.py: the spool on VfsLfs2 over the simulated flash.

Usage: micropython bench/mp_spool_bench.py DEFLATED_SIZE [quick]
(MICROPYPATH: tilltap_host.unixport.micropython_path(): the firmware package, tests/firmware)
DEFLATED_SIZE is what CPython's zlib makes of the typical receipt (this unix port cannot
compress; the ESP32 firmware can). quick: bench_spool.py's quick mode, fewer records.
bench_spool.py imports receipt_json from here on CPython, without the MicroPython-side modules.
"""
import os
import sys
import time

if sys.implementation.name == "micropython":
    import fwtest
    from flashsim import FlashSim

    from tilltap_fw.spool import Spool

MOUNT = "/flash"
SPOOL = MOUNT + "/spool"


def receipt_json(n, size=1500):
    """A JSON-like text receipt of about `size` bytes."""
    items = []
    i = 0
    while sum(len(x) for x in items) < size - 160:
        i += 1
        items.append('{"sku":"%06d","name":"ITEM %d","qty":%d,"price":"%d.%02d"}'
                     % (n * 31 + i, i, 1 + i % 3, i % 40, (i * 7) % 100))
    text = ('{"device":"tt-0001","receipt":%d,"ts":"2026-08-29T12:%02d:00Z","items":[%s],'
            '"total":"%d.00","tender":"CARD"}' % (n, n % 60, ",".join(items), n % 500))
    return text.encode()


def noise(n, size):
    """Incompressible bytes (compression cannot flatter the figure)."""
    out = bytearray(size)
    x = n * 2654435761 + 1
    for i in range(size):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = x >> 16 & 0xFF
    return bytes(out)


def fresh(blocks):
    flash = FlashSim(blocks)
    flash.format()
    flash.mount(MOUNT)
    return flash


def write_amplification(size, label, count=200, batch=10):
    flash = fresh(512)
    sp = Spool(SPOOL)
    records = [noise(i, size) for i in range(batch)]
    append_bytes = append_erases = total_bytes = 0
    for i in range(count // batch):
        flash.reset_counters()
        for r in records:
            sp.append(r)
        append_bytes += flash.programmed
        append_erases += flash.erases
        flash.reset_counters()
        sp.ack([s for s, _ in sp.pending(batch)])
        total_bytes += flash.programmed
    total_bytes += append_bytes
    payload = count * size
    flash.unmount(MOUNT)
    print("spool write amplification %s: %.2fx (target <= 1.5x)" % (label, append_bytes / payload))
    print("spool write amplification %s with acks: %.2fx, %.2f erases per record"
          % (label, total_bytes / payload, append_erases / count))


def capacity(record, label):
    flash = fresh(256)  # 1 MiB
    sp = Spool(SPOOL, min_free=0, policy="stop_capturing", compress=False)
    n = 0
    while sp.append(record) is not None:
        n += 1
    flash.unmount(MOUNT)
    print("spool records in 1 MiB flash, %s: %d" % (label, n))
    return n


def recovery(count=5000):
    blocks = count + count // 64 * 4 + 256
    flash = fresh(blocks)
    sp = Spool(SPOOL, min_free=0)
    record = receipt_json(1, 1000)
    for _ in range(count):
        sp.append(record)
    sp.ack([1])  # not a round number: the first subdirectory is a partial one
    flash.mount(MOUNT)
    t = time.ticks_us()
    sp = Spool(SPOOL, min_free=0)
    boot = time.ticks_diff(time.ticks_us(), t)
    assert sp.stats()["count"] == count - 1, sp.stats()
    t = time.ticks_us()
    os.statvfs(MOUNT)
    statvfs = time.ticks_diff(time.ticks_us(), t)
    flash.reset_counters()
    t = time.ticks_us()
    sp.ack([s for s, _ in sp.pending(50)])
    cycle = time.ticks_diff(time.ticks_us(), t)
    flash.unmount(MOUNT)
    print("spool boot recovery, %d records on VfsLfs2 (unix port, simulated flash): %d ms"
          % (count, boot // 1000))
    print("spool statvfs with %d records (LittleFS walks the whole tree): %d ms"
          % (count, statvfs // 1000))
    print("spool pending(50) + ack with %d records: %d ms" % (count, cycle // 1000))


def recovery_posix(count=5000):
    d = fwtest.tmpdir("bench-spool")
    sp = Spool(d, min_free=0)
    record = receipt_json(1, 1000)
    for _ in range(count):
        sp.append(record)
    t = time.ticks_us()
    sp = Spool(d, min_free=0)
    boot = time.ticks_diff(time.ticks_us(), t)
    fwtest.rmtree(d)
    print("spool boot recovery, %d records on the host filesystem (unix port): %d ms"
          % (count, boot // 1000))


def main(deflated_size, quick):
    count = 40 if quick else 200
    write_amplification(1024, "1KB", count)
    write_amplification(4096, "4KB", count)
    write_amplification(4000, "4000B", count)
    typical = receipt_json(7)
    capacity(typical, "%d B JSON receipt stored plain" % len(typical))
    capacity(noise(7, deflated_size), "same receipt deflated to %d B" % deflated_size)
    capacity(noise(7, 100), "a 100 B record (LittleFS inlines files this small)")
    records = 500 if quick else 5000
    recovery(records)
    recovery_posix(records)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:] == ["quick"])
