"""`tilltap serve`, except that the process dies (os._exit) right after its first commit of a
receipt batch and before any ack is sent: the crash window the delivery protocol must survive.
Used by tests/e2e/test_delivery_e2e.py through ServerProc(wrapper=...), which passes the
arguments of `tilltap serve`."""
import os
import sys

from tilltap import cli
from tilltap.ingest import writer as ingest

_real_done = ingest.Ingest._done


def _die_before_ack(self, fut, on_done, result):
    if result.error is None and result.acked:
        os.write(2, b"KILLED after commit of %d records, before the ack\n" % len(result.acked))
        os._exit(9)
    return _real_done(self, fut, on_done, result)


ingest.Ingest._done = _die_before_ack

if __name__ == "__main__":
    sys.exit(cli.main(["serve", *sys.argv[1:]]))
