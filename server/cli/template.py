"""`tilltap template test DEVICE SEQ template.json`: what a layout template extracts from one
stored receipt (nothing is stored)."""
import json
import sys

from tilltap.analysis import extraction
from tilltap.storage.database import make_engine


def add_command(sub):
    from tilltap.cli import database_arguments
    ap = sub.add_parser("template", help="layout templates: test one on a stored receipt",
                        description="Per-printer layout templates override the built-in "
                                    "extraction rules.")
    database_arguments(ap)
    actions = ap.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    p = actions.add_parser("test", help="show what a layout template extracts from a stored "
                                        "receipt")
    p.add_argument("device_id")
    p.add_argument("seq", type=int)
    p.add_argument("template_file", help="the template JSON (as PUT /api/v1/templates takes)")
    ap.set_defaults(run=run)


def run(args):
    engine = make_engine(args.db, schema=args.schema)
    try:
        with open(args.template_file) as f:
            template = json.load(f)
        result = extraction.try_template(engine, args.device_id, args.seq, template)
    except (OSError, ValueError, LookupError) as e:
        print("tilltap template: %s" % e, file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return 0
