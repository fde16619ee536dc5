"""Inline and listen-only modes on a board's UARTs: POS on one, printer on the other.

In listen-only mode (a Y-cable on the POS's transmit line, or a board with one free UART) the
board only reads; nothing it does can reach the printer. A serial line has no connections: an
idle gap (split.idle_ms without a byte from the POS while the tap holds nothing) ends the job,
and the next is parsed from the printer's power-on state. A hold (CTS low, paper out, a
printer that takes nothing) is never an idle gap.
"""
from .capture import END
from .ports import UartPort

try:
    import select

    import machine
except ImportError:   # CPython: the module imports, a board is needed to run it
    machine = select = None


def run(runner):
    """Forward (or only listen) forever."""
    board = runner.board
    cfg = runner.cfg
    listen = cfg["mode"] == "listen" or "printer_uart" not in board
    flow = cfg["printer"]["flow"] == "rtscts"
    pos = UartPort(_uart(runner, board["pos_uart"], flow and not listen), board["txbuf"], flow)
    printer = None
    if not listen:
        printer = UartPort(_uart(runner, board["printer_uart"], flow), board["txbuf"], flow)
    bypass(board, False)
    # a serial line has no connections: its idle gap ends a job (the parser starts afresh)
    tap = runner.new_tap(pos, printer, idle_mark=END)
    poller = select.poll()
    poller.register(pos.stream, select.POLLIN)
    if printer:
        poller.register(printer.stream, select.POLLIN)
    while True:
        moved = tap.step()
        if not moved:
            runner.wait(poller, tap)
        runner.tick(tap, moved)


def _uart(runner, pins, flow):
    kwargs = {"baudrate": runner.cfg["printer"]["baudrate"], "rx": pins["rx"],
              "rxbuf": runner.board["rxbuf"], "txbuf": runner.board["txbuf"],
              "timeout": 0, "timeout_char": 0}
    if pins.get("tx", -1) >= 0:
        kwargs["tx"] = pins["tx"]
    if flow and "rts" in pins:
        kwargs.update(rts=pins["rts"], cts=pins["cts"], flow=machine.UART.RTS | machine.UART.CTS)
    return machine.UART(pins["id"], **kwargs)


def bypass(board, on):
    """The board's bypass relay, if it has one: on, POS and printer are wired straight
    together (relay released); off, the bytes go through the board."""
    pin = board.get("bypass_pin")
    if machine and hasattr(machine, "Pin") and pin is not None:
        # relay released (pin low) = POS wired straight to the printer
        machine.Pin(pin, machine.Pin.OUT).value(0 if on else 1)
