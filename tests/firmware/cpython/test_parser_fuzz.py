"""The parser under fuzzing (issue 15): a seeded, structure-aware mutation fuzzer on CPython
and on MicroPython at a 128k heap, hypothesis properties over structured streams, and the
regressions for hostile streams (macro amplification, runs of control bytes).

`make soak` runs 1,000,000 inputs on CPython and 100,000 on MicroPython; `make test` a few
thousand of each. Every figure printed (inputs, bytes, seconds, inputs/s) is for the
interpreter named; nothing here asserts a time.
"""
import gc
import json
import os
import struct
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import parser_fuzz as pf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unixport import FIRMWARE_TESTS, micropython_command

from tilltap_fw.escpos_parser import LINE, RECEIPT_END, Parser
from tilltap_host.unixport import build_romfs, rom_heapsize

SOAK = bool(os.environ.get("TILLTAP_SOAK"))
HEAP = "128k"                # the board's heap; the firmware is imported from a ROMFS image
CPYTHON_SOAK_INPUTS = 1_000_000
MICROPYTHON_SOAK_INPUTS = 100_000
SHORT = 32                   # soak inputs: slices of up to this many bytes, then mutated
WORKERS = 2                  # the soak's processes per interpreter (the machine has 2 cores)
SEEDS = pf.seed_streams()
# the soak's budgets only with TILLTAP_SOAK=1 (make soak), also when this file is named alone


def soak_only(test):
    return pytest.mark.soak(pytest.mark.skipif(not SOAK, reason="make soak only")(test))



def _fuzz_cpython(seed, count, max_len, workers=1):
    """count inputs from seeds seed, seed + 1, ... split over workers processes."""
    started = time.monotonic()
    shares = [count // workers + (k < count % workers) for k in range(workers)]
    if workers == 1:
        results = [pf.run(seed, count, SEEDS, max_len)]
    else:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(pf.run, [seed + k for k in range(workers)], shares,
                                    [SEEDS] * workers, [max_len] * workers))
    took = time.monotonic() - started
    inputs = sum(r[0] for r in results)
    failures = [f for r in results for f in r[2]]
    print("parser fuzz, CPython: %d inputs (%d processes), %d bytes, %.1f s, %.0f inputs/s, "
          "%d failures" % (inputs, workers, sum(r[1] for r in results), took, inputs / took,
                           len(failures)))
    assert inputs == count and not failures, failures[:5]


def test_fuzz_cpython():
    _fuzz_cpython(1, 600, 512)


@soak_only
def test_fuzz_cpython_soak():
    _fuzz_cpython(1000, CPYTHON_SOAK_INPUTS, SHORT, WORKERS)


@pytest.fixture(scope="module")
def rom_image(tmp_path_factory):
    return build_romfs(str(tmp_path_factory.mktemp("rom") / "firmware.romfs"))


def _mp_command(batch, image):
    return [micropython_command(), "-X", "heapsize=%d" % rom_heapsize(HEAP, image),
            os.path.join(FIRMWARE_TESTS, "parser_fuzz_mp.py"), batch, image]


def _summary(returncode, output):
    """parser_fuzz_mp.py's JSON summary, checked: no exception, MemoryError or mismatch."""
    assert returncode == 0, output[-4000:]
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["exceptions"] == 0 and summary["memory_errors"] == 0, output[-4000:]
    assert summary["chunk_mismatch"] == 0, output[-4000:]
    return summary


def _run_batch(batch, image):
    """parser_fuzz_mp.py over a batch file under MicroPython at HEAP; its JSON summary."""
    result = subprocess.run(_mp_command(batch, image), capture_output=True, text=True,
                            timeout=1800, env=dict(os.environ, MICROPYPATH=".frozen"))
    return _summary(result.returncode, result.stdout + result.stderr)


def _fuzz_micropython(tmp_path, image, seed, count, max_len, workers=1):
    """count inputs (seeds seed, seed + 1, ...) in workers MicroPython processes at once."""
    runs = []
    for k in range(workers):
        batch = str(tmp_path / ("batch%d.bin" % k))
        pf.write_batch(batch, seed + k, count // workers + (k < count % workers), SEEDS, max_len)
        runs.append(subprocess.Popen(_mp_command(batch, image), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     env=dict(os.environ, MICROPYPATH=".frozen")))
    started = time.monotonic()
    summaries = []
    for run in runs:
        output = run.communicate(timeout=1800)[0]
        summaries.append(_summary(run.returncode, output))
    took = time.monotonic() - started
    inputs = sum(s["inputs"] for s in summaries)
    assert inputs == count
    print("parser fuzz, MicroPython unix port at %s: %d inputs (%d processes), %d bytes, "
          "%.1f s, %.0f inputs/s, %d bytes free at start, 0 exceptions, 0 MemoryError"
          % (HEAP, inputs, workers, sum(s["bytes"] for s in summaries), took, inputs / took,
             min(s["heap_free_at_start"] for s in summaries)))


def test_fuzz_micropython_128k(tmp_path, rom_image):
    _fuzz_micropython(tmp_path, rom_image, 2, 500, 512)


@soak_only
def test_fuzz_micropython_128k_soak(tmp_path, rom_image):
    _fuzz_micropython(tmp_path, rom_image, 2000, MICROPYTHON_SOAK_INPUTS, SHORT, WORKERS)


# ---- hypothesis: streams built from the pieces that break parsers ----------------------------

EXAMPLES = 1500 if SOAK else 120
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _slice(choice):
    index, at, size = choice
    stream = SEEDS[index % len(SEEDS)]
    at %= max(len(stream), 1)
    return stream[at:at + size]


PIECES = st.one_of(
    st.binary(max_size=40),
    st.tuples(st.integers(0, 10 ** 6), st.integers(0, 10 ** 7), st.integers(1, 300)).map(_slice),
    st.builds(lambda prefix, c, args: prefix + bytes((c,)) + args,
              st.sampled_from(pf._PREFIXES), st.integers(0, 255), st.binary(max_size=8)),
    st.builds(lambda head, n, args: head + struct.pack("<H", n) + args,
              st.sampled_from(pf._LENGTHS), st.sampled_from((0, 1, 2, 3, 0xFFFF)) |
              st.integers(0, 0xFFFF), st.binary(max_size=12)),
    st.builds(lambda body, args, k: b"\x1d:" + body + b"\x1d:" + (b"\x1d^" + args) * k,
              st.lists(st.sampled_from((b"Macro line\n", b"\n", b"\x1dV\x00", b"\x07",
                                        b"\x1dkE\x0312", b"\x1bp\x00\x05\x05")),
                       max_size=70).map(b"".join),
              st.binary(min_size=3, max_size=3), st.integers(1, 60)),
    st.builds(lambda c, k: bytes((c,)) * k, st.integers(0, 31), st.integers(1, 3000)),
)


@SETTINGS
@given(st.lists(PIECES, min_size=1, max_size=12), st.lists(st.integers(1, 10 ** 6), max_size=12),
       st.sampled_from(pf.PROFILES))
def test_structured_streams_keep_the_invariants(pieces, cuts, profile):
    """No exception; the same events and stats in any chunks; events, replays and text
    bounded per input byte (parser_fuzz.check names the constants and where they come from)."""
    data = b"".join(pieces)
    cuts = sorted({c % len(data) for c in cuts} - {0}) if data else []
    pf.check(data, cuts, *profile)


# ---- regressions: issue 15 findings 2 and 11 --------------------------------------------------

# Finding 2: a macro of 64 recorded lines (GS : ... GS :) and 42 replays of it, 16 times each
# (GS ^ 16 0 0): 344 bytes asking for 43,008 events. One feed() of it raised MemoryError in
# the parser at 128k on the unix port.
MACRO_BOMB = b"\x1b@\x1d:" + b"a\n" * 64 + b"\x1d:" + b"\x1d^\x10\x00\x00" * 42


def test_macro_amplification_is_bounded_on_cpython():
    assert len(MACRO_BOMB) == 344
    p = Parser()
    events = p.feed(MACRO_BOMB) + p.close()
    lines = [e for e in events if e[0] == LINE]
    # the 64 recorded lines, then one stream window's replay budget (344 bytes: one window)
    assert len(lines) == 64 + pf.REPLAY_BUDGET
    assert p.stats()["macro_events_dropped"] == 42 * 16 * 64 - pf.REPLAY_BUDGET
    assert len(events) <= pf.events_bound(len(MACRO_BOMB))


def test_macro_amplification_at_128k_on_the_unix_port(tmp_path, rom_image):
    """The 344 bytes in one feed(), and in capture's slices, under MicroPython at 128k: no
    MemoryError, the same events both ways, no more than the replay budget allows. Eight of
    them in the tap's chunks (512 bytes: no feed on the board is larger)."""
    batch = str(tmp_path / "bomb.bin")
    with open(batch, "wb") as f:
        pf.write_header(f)
        pf.write_record(f, MACRO_BOMB, step=len(MACRO_BOMB))     # one feed() of all of it
        pf.write_record(f, MACRO_BOMB * 8, step=512)
    summary = _run_batch(batch, rom_image)
    assert summary["inputs"] == 2
    # the longer stream: 8 receipts' budgets, its windows' budgets; none more
    assert 64 + pf.REPLAY_BUDGET < summary["max_events"] <= pf.events_bound(8 * len(MACRO_BOMB))


# Finding 11: each NUL or 0x01 byte re-scanned a 256-byte window (105-158 KB/s on the unix
# port). The parser's work is counted here, not timed: its calls (Python functions and the
# builtins it calls, such as min() and find() that scan bytes) for a run of control bytes must
# not grow with the run's length.
def _calls(stream, profile):
    parser = Parser(profile=profile)
    count = [0]

    def profiler(frame, event, arg):
        if event in ("call", "c_call"):
            count[0] += 1

    # no collection meanwhile: it would count the finalisers of other tests' garbage
    gc.collect()
    gc.disable()
    sys.setprofile(profiler)
    try:
        events = parser.feed(stream) + parser.close()
    finally:
        sys.setprofile(None)
        gc.enable()
    # receipt ends without their offsets: the control bytes move those
    return count[0], [e[:3] if e[0] == RECEIPT_END else e for e in events]


@pytest.mark.parametrize("profile", ["epson", "star"])
def test_control_byte_runs_are_skipped_in_bulk(profile):
    receipt = b"\x1b@Coffee 3.50\n%sTotal 3.50\n\x1dV\x00"
    plain_calls, plain = _calls(receipt % b"", profile)
    for run in (b"\x00", b"\x01", b"\x00\x01\x02\x03\x06\x08\x0b\x0e\x0f\x11\x12\x13\x15\x16"):
        short_calls, short = _calls(receipt % (run * 256), profile)
        long_calls, long = _calls(receipt % (run * 16384), profile)
        # control bytes print nothing: the events are those of the receipt without them
        assert short == long == plain, run
        # and the run costs the same calls however long it is: one bulk skip per run
        assert long_calls == short_calls, (run, short_calls, long_calls)
        assert long_calls <= plain_calls + 8, (run, plain_calls, long_calls)
