"""A VirtualPrinter on its own event-loop thread, for tests that drive the tap from plain
blocking code (sockets, python-escpos, subprocesses)."""
import asyncio
import threading

from tilltap_host.virtual_printer import VirtualPrinter


class PrinterLoop:
    """The loop thread; start() puts a printer on it, stop() takes it away again."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.printer = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def start(self, port=None, **options):
        """A printer listening on port (a free one by default); options as VirtualPrinter's."""
        self.printer = asyncio.run_coroutine_threadsafe(
            VirtualPrinter(port=port or 0, **options).start(), self.loop).result(10)
        return self.printer

    def stop(self):
        if self.printer is not None:
            asyncio.run_coroutine_threadsafe(self.printer.stop(), self.loop).result(10)

    def close(self):
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
