"""`tilltap tap --config config.json`: a tap on this PC in front of a network printer.

The firmware itself runs, on the MicroPython unix port with the host board, exactly as on a
board in network mode: the POS prints to this PC (pos.listen_port), every byte goes on to the
printer (printer.host, printer.port), receipts go to the spool and on to the server. This
command only prepares what a PC lacks: a data directory (the spool, the status file), and a
console that Ctrl-C stops.

    tilltap tap --config config.json [--data DIR] [--heapsize 128k]

Exit status: the firmware's (0 after Ctrl-C, 2 for a refused configuration or a port in use).
"""
import json
import os
import signal
import socket
import subprocess
import sys

from tilltap_fw import config as device_config
from tilltap_host.unixport import firmware_command


def default_data_dir():
    """$TILLTAP_DATA, else $XDG_DATA_HOME/tilltap, else ~/.local/share/tilltap."""
    explicit = os.environ.get("TILLTAP_DATA")
    if explicit:
        return explicit
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return os.path.join(base, "tilltap")


def add_command(parent):
    ap = parent.add_parser("tap", help="run a tap on this PC in front of a network printer",
                           description="Run the firmware (MicroPython unix port, host board) "
                                       "between POS and a network printer; Ctrl-C stops it.")
    ap.add_argument("--config", required=True, help="device configuration JSON (README)")
    ap.add_argument("--data", default=None,
                    help="where the spool and status live, one directory per device "
                         "(default: $TILLTAP_DATA or ~/.local/share/tilltap)")
    ap.add_argument("--heapsize", default=None,
                    help="the firmware's heap, as on a chip (e.g. 128k; default: the port's), "
                         "with a chip's 4 KiB capture backlog and the code in a ROMFS image "
                         "as a production board boots it")
    ap.set_defaults(run=run)


def prepare(config_path, data_dir):
    """(the configuration the firmware runs with, its directory): the user's file, checked
    here for a message before anything starts, with the spool put under data_dir unless the
    file names one. SystemExit with the reason when the file is unusable."""
    try:
        with open(config_path) as f:
            raw = json.load(f)
    except OSError as e:
        raise SystemExit("tilltap tap: cannot read %s: %s" % (config_path, e.strerror))
    except ValueError as e:
        raise SystemExit("tilltap tap: %s is not JSON: %s" % (config_path, e))
    if not isinstance(raw, dict):
        raise SystemExit("tilltap tap: %s: the configuration is a JSON object" % config_path)
    try:
        checked = device_config.validate(raw)
    except device_config.ConfigError as e:
        raise SystemExit("tilltap tap: %s: %s" % (config_path, e))
    if checked["mode"] != "network":
        raise SystemExit("tilltap tap: a PC taps network printers: set \"mode\": \"network\" "
                         "(serial lines need a board)")
    workdir = os.path.join(data_dir, checked["device_id"])
    os.makedirs(workdir, exist_ok=True)
    raw = dict(raw)
    spool = dict(raw.get("spool") or {})
    spool.setdefault("dir", os.path.join(workdir, "spool"))
    os.makedirs(spool["dir"], exist_ok=True)
    raw["spool"] = spool
    return raw, workdir


def _check_printer_name(host, port):
    try:
        socket.getaddrinfo(host, port)
    except OSError as e:
        # not fatal: the name is resolved again for every job (DNS may come back)
        print("tilltap tap: warning: printer name %r does not resolve now (%s); jobs are "
              "refused until it does" % (host, e), file=sys.stderr)


def run(args):
    data_dir = os.path.abspath(args.data or default_data_dir())
    cfg, workdir = prepare(args.config, data_dir)
    effective = os.path.join(workdir, "config.json")
    with open(effective, "w") as f:
        json.dump(cfg, f, indent=2)
    status = os.path.join(workdir, "status.json")
    printer = cfg["printer"]
    _check_printer_name(printer["host"], printer.get("port", 9100))
    print("tilltap tap: spool %s, status %s; Ctrl-C stops" % (cfg["spool"]["dir"], status),
          flush=True)
    # a heap as on a chip: the code in flash, as a production board boots it (ROMFS)
    cmd, env = firmware_command(workdir, effective, status, heapsize=args.heapsize,
                                rom=bool(args.heapsize))
    proc = subprocess.Popen(cmd, env=env, cwd=workdir)
    # Ctrl-C reaches the firmware (same process group), which stops and says so; this process
    # waits for it instead of dying first. SIGTERM is passed on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGINT))
    try:
        return proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
