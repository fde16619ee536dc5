"""`tilltap`: the one command-line entry point for host-side tools."""
import argparse
import sys

from tilltap import (analysis_command, board_command, demo, devices_command, parse_command,
                     serve)


class _ArgumentParser(argparse.ArgumentParser):
    """Bad usage gets one line on stderr (and `--help` for the rest), exit status 2."""

    def error(self, message):
        self.exit(2, "%s: error: %s (see --help)\n" % (self.prog, message))


def build_parser():
    ap = _ArgumentParser(prog="tilltap", description="TillTap host tools")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    parse_command.add_arguments(sub.add_parser(
        "parse", help="parse ESC/POS print streams into receipts (JSON lines)",
        description="Parse ESC/POS print streams; prints one JSON object per file."))
    serve.add_arguments(sub.add_parser(
        "serve", help="run the server: HTTP API and MQTT consumer",
        description="Receive receipts over HTTP and MQTT, store them once, acknowledge them."))
    devices_command.add_arguments(sub.add_parser(
        "devices", help="register, list and revoke devices; write Mosquitto passwd/acl files",
        description="The device registry: one unique ID and credential per tap."))
    demo.add_arguments(sub.add_parser(
        "demo", help="run the whole system on this PC (firmware on the unix port, server, "
                     "virtual printer, simulated POS)",
        description="The whole system on this PC; --once replays once and reports."))
    board_command.add_arguments(sub.add_parser(
        "board", help="flash, deploy to and talk to a board",
        description="Flash MicroPython, deploy the firmware and configuration, open a REPL."))
    analysis_command.add_crm_arguments(sub.add_parser(
        "crm", help="customer data: import a CSV (member_id, phone, name, email, ...)",
        description="Upsert customers by member ID and link their receipts."))
    analysis_command.add_reextract_arguments(sub.add_parser(
        "reextract", help="extract the fields of every stored receipt again",
        description="Re-run field extraction (rules and layout templates) on stored receipts."))
    analysis_command.add_template_arguments(sub.add_parser(
        "template", help="layout templates: test one on a stored receipt",
        description="Per-printer layout templates override the built-in extraction rules."))
    analysis_command.add_operators_arguments(sub.add_parser(
        "operators", help="dashboard operators (login for reports and customer data)",
        description="Create operators; device credentials never open the dashboard."))
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
