"""`tilltap devices add|list|revoke|retry-refused|mosquitto`: the device registry from the
command line.

    tilltap devices add a1b2c3d4e5f6          # prints the credential, once
    tilltap devices add --role server tilltap-server
    tilltap devices list
    tilltap devices revoke a1b2c3d4e5f6
    tilltap devices retry-refused a1b2c3d4e5f6  # the tap offers the records refused again
    tilltap devices mosquitto /etc/mosquitto/tilltap   # passwd + acl, then reload mosquitto

add and revoke also rewrite the Mosquitto files when --mosquitto-dir is given.
"""
import json
import os
import sys

from tilltap.accounts import broker_files, devices
from tilltap.storage.database import make_engine


def add_command(sub):
    from tilltap.cli import database_arguments, database_arguments_after
    ap = sub.add_parser("devices", help="register, list and revoke devices; write Mosquitto "
                                        "passwd/acl files",
                        description="The device registry: one unique ID and credential per tap.")
    database_arguments(ap)
    ap.add_argument("--mosquitto-dir", help="rewrite passwd and acl here after a change")
    actions = ap.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    p = actions.add_parser("add", help="register a device; prints its credential once")
    p.add_argument("device_id")
    p.add_argument("--role", choices=devices.ROLES, default="device",
                   help="server: an account for `tilltap serve` to consume MQTT with")
    p = actions.add_parser("list", help="list devices (JSON lines)")
    p = actions.add_parser("revoke", help="revoke a device's credential")
    p.add_argument("device_id")
    p = actions.add_parser("retry-refused",
                           help="ask a device to send the records the server refused again "
                                "(with the answer to its next telemetry report)")
    p.add_argument("device_id")
    p = actions.add_parser("mosquitto", help="write Mosquitto passwd and acl files")
    p.add_argument("directory")
    database_arguments_after(actions)
    ap.set_defaults(run=run)


def run(args):
    folder = args.mosquitto_dir or (args.directory if args.action == "mosquitto" else None)
    if folder and not os.path.isdir(folder):
        # checked first: a device added and its broker files not written would be shown its
        # credential once and then refused by the broker
        print("tilltap devices: %s is not a folder" % folder, file=sys.stderr)
        return 2
    engine = make_engine(args.db, schema=args.schema)
    try:
        if args.action == "add":
            print(devices.add(engine, args.device_id, args.role))
        elif args.action == "revoke":
            devices.revoke(engine, args.device_id)
        elif args.action == "retry-refused":
            number = devices.request_retry_refused(engine, args.device_id)
            print("request %d for %s: sent with the answer to its next telemetry report"
                  % (number, args.device_id))
        elif args.action == "list":
            for d in devices.list_all(engine):
                print(json.dumps(d, default=str))
        else:
            for path in broker_files.write(engine, args.directory):
                print(path)
    except devices.DeviceError as e:
        print("tilltap devices: %s" % e, file=sys.stderr)
        return 1
    if args.mosquitto_dir and args.action in ("add", "revoke"):
        broker_files.write(engine, args.mosquitto_dir)
    return 0

