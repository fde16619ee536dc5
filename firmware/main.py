"""TillTap firmware entry point: the board definition and the configuration, then the tap
until power goes.

On the board /main.py starts it with /board.json and /config.json. On a PC (the `host` board,
MicroPython unix port, with the package on MICROPYPATH):

    micropython -m tilltap_fw.main --board boards/host/board.json --config config.json \
        [--status status.json]

Fail-safe order: forwarding is built first and from the board definition alone; capture and
the uplink after it (runner.py), so a bad configuration, a broken flash or an out-of-memory
leaves a tap that still forwards. On boards with a bypass relay the relay connects POS and
printer directly until the forwarding loop runs, and a hung board is restarted by the
watchdog.
"""
import gc
import json
import sys

from .compat import sleep_ms, ticks_ms
from .runner import Runner


def load_board(path):
    """The board definition (pins, UARTs, modes) from its JSON file."""
    with open(path) as f:
        return json.load(f)


def _args(argv):
    opts = {"--board": "/board.json", "--config": "/config.json", "--status": None}
    k = 1
    while k < len(argv):
        if argv[k] in opts and k + 1 < len(argv):
            opts[argv[k]] = argv[k + 1]
            k += 2
        else:
            raise SystemExit("usage: main.py [--board FILE] [--config FILE] [--status FILE]")
    return opts


def boot_config(path):
    """(configuration, problem): the validated file, or the defaults and why it was refused.

    The schema module is dropped once the file is checked: on the board its code would
    otherwise hold heap the receipts need for as long as the tap runs.
    """
    from . import config
    try:
        cfg, problem = config.load(path), None
    except config.ConfigError as e:
        cfg, problem = config.defaults(), "config: %s" % e
    del config
    sys.modules.pop(__name__.rpartition(".")[0] + ".config", None)
    package = sys.modules.get(__name__.rpartition(".")[0])
    if package is not None and hasattr(package, "config"):
        delattr(package, "config")
    gc.collect()
    # Rebuilt in one piece: the checked dicts and strings were made among the schema's
    # objects, and left where they are they would pin the space the schema gives back
    # (measured: 17 KB free in no piece over 1 KB, at 128 KiB on the unix port).
    text = json.dumps(cfg)
    del cfg
    gc.collect()
    return json.loads(text), problem


def main(argv=None):
    """Boot: board, configuration (defaults when it is bad), capture, then forward forever."""
    opts = _args(argv if argv is not None else getattr(sys, "argv", ["main.py"]))
    board = load_board(opts["--board"])
    cfg, problem = boot_config(opts["--config"])
    if problem:
        print("tilltap:", problem)
        if board["chip"] == "unix":
            raise SystemExit(2)          # no printer address to forward to
        # On a board: with a bypass relay POS and printer stay wired directly; without one,
        # forward with the default line settings and capture nothing.
        if board.get("bypass_pin") is not None:
            from .uart_mode import bypass
            runner = Runner(board, cfg)
            bypass(board, True)
            runner.config_refused = True
            while True:
                if runner.led is not None:
                    runner.led.show(runner.health(), ticks_ms())
                sleep_ms(100)
    runner = Runner(board, cfg, opts["--status"])
    if problem:
        runner.problems.append(problem)
        runner.config_refused = True
    else:
        if board["chip"] != "unix":
            from .wifi import Network
            runner.network = Network(cfg)
        runner.build()
    while True:
        try:
            runner.run()
        except OSError as e:       # the POS side cannot be had (a port in use)
            if board["chip"] == "unix":
                print("tilltap:", e.args[1] if len(e.args) > 1 else e)
                sys.exit(2)
            runner.problem("network", e)
            sleep_ms(1000)
        except KeyboardInterrupt:  # Ctrl-C on a PC (a board turns it off: kbd_intr)
            stats = runner.spool.stats() if runner.spool is not None else {}
            runner.log("stopped; %s receipts waiting in the spool" % stats.get("count", 0))
            sys.exit(0)


if __name__ == "__main__":
    main()
