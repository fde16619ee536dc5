"""Byte ports the tap forwards between: UARTs on the board, TCP sockets on a PC or in network mode.

Every port is non-blocking:
    readinto(mv) -> bytes read (0 when none are waiting, None when the peer has closed)
    write(mv)    -> bytes taken (0 when the other side cannot take any now, None when closed)
    stream       the object to register with select.poll
"""
import errno

_EAGAIN = (errno.EAGAIN, getattr(errno, "EWOULDBLOCK", errno.EAGAIN))


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

    def write(self, mv):
        if self._flow:
            if not self.stream.txdone():
                return 0
            if len(mv) > self._txbuf:
                mv = mv[:self._txbuf]
        return self.stream.write(mv) or 0


class SocketPort:
    """A connected TCP socket, switched to non-blocking (MicroPython and CPython sockets)."""

    def __init__(self, sock):
        sock.setblocking(False)
        self.stream = sock
        # CPython sockets have recv_into; MicroPython's have readinto (None on EAGAIN)
        self._recv_into = getattr(sock, "recv_into", None) or sock.readinto

    def readinto(self, mv):
        try:
            n = self._recv_into(mv)
        except OSError as e:
            if e.args and e.args[0] in _EAGAIN:
                return 0
            return None            # reset by peer and friends: the connection is gone
        if n is None:
            return 0
        return n if n else None

    def write(self, mv):
        try:
            n = self.stream.send(mv)
        except OSError as e:
            if e.args and e.args[0] in _EAGAIN:
                return 0
            return None            # broken pipe: the connection is gone
        return n or 0

    def close(self):
        try:
            self.stream.close()
        except OSError:
            pass
