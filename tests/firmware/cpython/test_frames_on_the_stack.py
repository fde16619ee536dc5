"""The calls forwarding makes for every chunk keep their frames on the C stack.

MicroPython allocates a call's frame from the heap when its state (locals and stack slots, a
word each, plus three words per exception handler level) passes 11 words (py/objfun.c,
VM_MAX_STATE_ON_STACK; the same count on the ESP32's 32-bit words). On a heap that capture
fragments, each such allocation searched the heap: a third of the tap's CPU (perf, README).
The unix port prints each compiled function's N_STATE and N_EXC_STACK with -v -v.
"""
import os
import re

from unixport import ROOT, run_micropython

_MAX_WORDS = 11
_EXC_WORDS = 3
# module: functions called for every chunk or every loop turn while a job forwards, and for
# every slice capture parses
PER_CHUNK = {
    "ports": ("readinto", "_counted"),
    "tap": ("step", "_pump", "pump", "_drain", "_taken", "_capture_step"),
    "capture": ("took", "_keep", "pressed", "has_work"),
    "escpos_parser": ("feed", "_run", "_payload", "_header", "_keep"),   # per 128-byte slice
    "network_mode": ("turn", "step", "_watch", "_ready"),
    "runner": ("tick",),
}
_BLOCK = re.compile(r"code block '([^']+)'.*?\(N_STATE (\d+)\)\s*\(N_EXC_STACK (\d+)\)", re.S)


def _frames(module):
    """{function: words of state} of a firmware module, as the unix port compiles it."""
    path = os.path.join(ROOT, "firmware", module + ".py")
    # compiled before it runs: the dump is complete even though the relative imports fail
    out = run_micropython(["-v", "-v", path]).stdout
    words = {}
    for name, n_state, n_exc in _BLOCK.findall(out):
        words.setdefault(name, []).append(int(n_state) + _EXC_WORDS * int(n_exc))
    return words


def test_per_chunk_calls_fit_the_stack_frame():
    too_big = []
    for module, names in PER_CHUNK.items():
        words = _frames(module)
        for name in names:
            assert name in words, (module, name)
            # a name may be defined in two classes (SocketPort.readinto, UartPort.readinto)
            too_big += ["%s.%s: %d words" % (module, name, w) for w in words[name]
                        if w > _MAX_WORDS]
    assert not too_big, too_big
