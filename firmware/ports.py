"""Byte ports the tap forwards between: UARTs on the board, TCP sockets on a PC or in network mode.

Every port is non-blocking:
    readinto(buf) -> bytes read, 0 when none are waiting, None when the peer closed its sending
                     side (TCP FIN), -1 when the connection failed (reset)
    write(buf, start, n) -> bytes of buf[start:start + n] taken, 0 when the other side cannot
                     take any now, -1 when it failed (no slice is made: MicroPython streams
                     take an offset and a length, so forwarding allocates nothing per write)
    stream        the object to register with select.poll
"""
import struct

try:
    import socket
except ImportError:
    socket = None

# SO_LINGER on with a zero timeout: close() sends RST, not FIN. lwIP builds without it (many
# ESP-IDF configurations) refuse the option; closing with unread bytes still resets there.
_LINGER_RESET = struct.pack("ii", 1, 0)


def _counted(n):
    """A socket read's result in the port's terms: None (nothing waiting) becomes 0, and 0 (the
    peer's FIN) becomes None."""
    if n is None:
        return 0
    return n if n else None


class UartPort:
    """A machine.UART built with timeout=0 (reads return what is buffered, never wait).

    ESP32 trap: uart.write() blocks until the bytes fit the TX ring buffer and holds the GIL
    meanwhile, so a printer holding CTS (paper out) would freeze every thread. With hardware
    flow control we therefore write only into an empty TX ring (txdone()), at most txbuf
    bytes, which always fits; the tap keeps the rest and stops reading from the POS, whose RTS
    line then pushes back. Without flow control a write takes at most len*10/baud seconds.
    """

    def __init__(self, uart, txbuf=1024, flow=False):
        self.stream = uart
        self._txbuf = txbuf
        self._flow = flow

    def readinto(self, mv):
        n = self.stream.readinto(mv)
        return n or 0

    def write(self, buf, start, n):
        if self._flow:
            if not self.stream.txdone():
                return 0
            n = min(n, self._txbuf)
        return self.stream.write(buf, start, n) or 0


class SocketPort:
    """A connected TCP socket, switched to non-blocking (MicroPython and CPython sockets)."""

    def __init__(self, sock):
        sock.setblocking(False)
        self.stream = sock
        # MicroPython sockets have readinto and write(buf, off, len), both None on EAGAIN (no
        # exception object per empty or full buffer); CPython's recv_into and send raise
        # BlockingIOError there, which _recv and _send_view turn into None
        cpython = hasattr(sock, "recv_into")
        self._recv_into = self._recv if cpython else sock.readinto
        self._send = self._send_view if cpython else sock.write

    # readinto and write run per chunk: they catch without "as e" and do little else, so that
    # their frames stay off the heap (tap.py, Frames; write's four arguments still do not fit)

    def readinto(self, mv):
        try:
            return _counted(self._recv_into(mv))
        except OSError:
            return -1              # reset by peer and friends: the connection failed

    def write(self, buf, start, n):
        try:
            return self._send(buf, start, n) or 0
        except OSError:
            return -1              # broken pipe, reset: the connection failed

    def _recv(self, mv):
        try:
            return self.stream.recv_into(mv)
        except BlockingIOError:
            return None

    def _send_view(self, buf, start, n):
        try:
            return self.stream.send(memoryview(buf)[start:start + n])
        except BlockingIOError:
            return None

    def close(self):
        """Close: the peer sees the end of the stream (FIN), or an error if it still sends."""
        try:
            self.stream.close()
        except OSError:
            pass

    def reset(self):
        """Close with a reset (RST): the peer sees an error, as it would had the other side of
        the tap failed in its face."""
        try:
            self.stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except (OSError, AttributeError, TypeError):
            pass
        self.close()
