"""Streaming ESC/POS parser: the byte stream a POS sends to a receipt printer, as receipt events.

    p = Parser()                       # Epson-compatible printer
    for event in p.feed(chunk): ...    # any chunk: bytes, bytearray or memoryview
    for event in p.close(): ...        # end of stream

Events are tuples whose first item is the kind:
    (LINE, text, raw)          a printed text line. text is Unicode with trailing spaces removed;
                               on MicroPython (no codecs) a line that is not plain ASCII/UTF-8 has
                               text None and raw = ((encoding, intl_set, bytes), ...) instead
    (BARCODE, symbology, data) a 1D barcode (data without the printer's HRI text)
    (CODE2D, type, data)       a 2D code (QR, PDF417, ...) when it is printed
    (IMAGE, kind, width, height, size)  an image: raster | column | graphics | star-raster | logo
    (CUT, "full"|"partial")
    (RECEIPT_END, reason, cut, offset)
                               reason: cut | idle | init | abort | end | truncated (the stream
                               ended inside a command: an image payload, a barcode, ...) |
                               tear (a tear-off feed, printers without a cutter: tear_lines);
                               cut: full | partial | None; offset: stream position just after
                               the receipt's last byte. A receipt ended by a cut ends when the
                               next receipt begins (text, a code, an image, ESC @) or the
                               stream ends: a drawer kick after the cut is still its own
                               (print, cut, open the drawer), and its offset includes it
    (DRAWER, pin)              cash drawer kick
    (REQUEST, name)            a command that makes the printer answer (a reply will come back)

Framing follows ../shared/docs/escpos-commands.md: every command is sized exactly, payloads are
skipped in bulk by a byte counter, unknown commands take 2 bytes (ESC/FS/GS x) or the P16 length
(ESC/FS/GS ( x), absurd lengths count as desync. Memory is bounded whatever the input: line,
barcode, 2D-code and scan lengths are capped; what is cut off is counted in stats().
Events are identical however the stream is split into chunks.
"""
# generated tables (tools/gen_command_tables.py): literals stay in flash on the board
from .command_tables import ACTS as _ACTS
from .command_tables import ESC_FIX as _ESC_FIX
from .command_tables import FS_ACTS as _FS_ACTS
from .command_tables import FS_FIX as _FS_FIX
from .command_tables import GS_ACTS as _GS_ACTS
from .command_tables import GS_FIX as _GS_FIX
from .command_tables import IGNORED as _IGNORED
from .command_tables import STAR_ACTS as _STAR_ACTS
from .command_tables import STAR_ESC_FIX as _STAR_ESC_FIX
from .command_tables import STAR_IGNORED as _STAR_IGNORED
from .compat import const

try:
    import codecs as _codecs
except ImportError:
    _codecs = None   # MicroPython has no codecs module

LINE = "line"
BARCODE = "barcode"
CODE2D = "code2d"
IMAGE = "image"
CUT = "cut"
RECEIPT_END = "receipt_end"
DRAWER = "drawer"
REQUEST = "request"
# Requests whose answer is exactly one byte (escpos-commands.md section 10); any other answer's
# length is not known in advance. One string: it stays in flash with the module.
_ONE_BYTE_REPLIES = ("|DLE EOT 1|DLE EOT 2|DLE EOT 3|DLE EOT 4|GS r 1|GS r 2|GS r 4|GS r 49"
                     "|GS r 50|GS r 52|GS I 1|GS I 2|GS I 3|GS I 49|GS I 50|GS I 51|ESC u|ESC v"
                     "|ENQ|EOT|")


# What every command that makes the printer answer (a REQUEST event) begins with: bytes that
# hold none of these, fed to a parser between commands, ask nothing (Parser.may_ask). Star
# line mode's status requests are single bytes.
REQUEST_PREFIXES = (b"\x10\x04", b"\x10\x14", b"\x1bu", b"\x1bv", b"\x1b\x06\x01",
                    b"\x1b\x1dy", b"\x1b\x1dx", b"\x1da", b"\x1dr", b"\x1dI", b"\x1dg",
                    b"\x1d(", b"\x1c(", b"\x1cg")
STAR_REQUEST_PREFIXES = (b"\x04", b"\x05")


def reply_bytes(request):
    """Bytes the printer answers a REQUEST event's command with: 1 for the status requests of
    fixed size, 0 when not known in advance (IDs, automatic status, Star's status blocks)."""
    return 1 if ("|" + request + "|") in _ONE_BYTE_REPLIES else 0


# One shared event for every blank line: a receipt fed by LFs costs a list slot per line.
_BLANK_LINE = (LINE, "", None)

_ESC = const(0x1B)
_GS = const(0x1D)
_FS = const(0x1C)          # Star Line Mode: fire drawer 1 at once
_DLE = const(0x10)
_LF = const(0x0A)
_CR = const(0x0D)
_HT = const(0x09)
_FF = const(0x0C)          # page mode: print the page
_CAN = const(0x18)         # page mode: drop the page; Star: cancel and initialise
_EOT = const(0x04)         # DLE EOT n: real-time status; Star: a status request by itself
_ENQ = const(0x05)         # DLE ENQ n: real-time request; Star: a status request by itself
_DC4 = const(0x14)         # DLE DC4 fn ...: real-time drawer pulse, power off, buffer clear
_BEL = const(0x07)         # Star: fire drawer 1
_EM = const(0x19)          # Star: fire drawer 2 at once
_SUB = const(0x1A)         # Star: fire drawer 2
_RS = const(0x1E)          # Star: ends ESC b barcode data; ESC RS x n

# Command bytes after the prefix, named for what they do; the comment spells the command.
# Commands that only need framing are in the *_FIX tables below and have no name here.
# ESC x
_INIT = const(0x40)                  # ESC @   initialise the printer
_SELECT_CODE_TABLE = const(0x74)     # ESC t n
_INTL_CHARSET = const(0x52)          # ESC R n
_SELECT_DEVICE = const(0x3D)         # ESC = n   bit 0 off: data is for a customer display
_FEED_LINES = const(0x64)            # ESC d n   print and feed n lines
_FEED_UNITS = const(0x4A)            # ESC J n   print and feed n units (Star: n/4 mm)
_BACK_FEED_UNITS = const(0x4B)       # ESC K n   print and feed back n units
_BACK_FEED_LINES = const(0x65)       # ESC e n   print and feed back n lines
_CUT_ONE_POINT = const(0x69)         # ESC i   partial cut, one point left (obsolete)
_CUT_THREE_POINTS = const(0x6D)      # ESC m   partial cut, three points left (obsolete)
_DRAWER_PULSE = const(0x70)          # ESC p m t1 t2
_PAGE_MODE = const(0x4C)             # ESC L
_STANDARD_MODE = const(0x53)         # ESC S
_PRINT_PAGE = const(0x0C)            # ESC FF   print the page, stay in page mode
_ABS_POSITION = const(0x24)          # ESC $ nL nH
_REL_POSITION = const(0x5C)          # ESC \ nL nH
_SEND_PERIPHERAL = const(0x75)       # ESC u n   transmit peripheral status
_SEND_PAPER = const(0x76)            # ESC v   transmit paper sensor status
_ESC_PAREN = const(0x28)             # ESC ( x pL pH ...
_BIT_IMAGE = const(0x2A)             # ESC * m nL nH d...
_DEFINE_CHARS = const(0x26)          # ESC & y c1 c2 [x d...]...
_TAB_STOPS = const(0x44)             # ESC D n1 ... NUL (Star: the same)
# ESC x in Star Line Mode (ESC @, ESC R, ESC J and ESC D as on Epson; ESC GS is below)
_STAR_CUT = const(0x64)              # ESC d n   cut
_STAR_FEED_LINES = const(0x61)       # ESC a n   feed n lines
_STAR_FEED_FINE = const(0x49)        # ESC I n   feed n/8 mm
_STAR_DRAWER_PULSE = const(0x07)     # ESC BEL n1 n2   drawer pulse widths
_STAR_STATUS = const(0x06)           # ESC ACK SOH   request an automatic-status block
_SOH = const(0x01)
_STAR_FORM_FEED = const(0x0C)        # ESC FF NUL|EOT   raster mode: end the page|the job
_STAR_BARCODE = const(0x62)          # ESC b n1 n2 n3 n4 d... RS
_STAR_VTAB_STOPS = const(0x42)       # ESC B n1 ... NUL
_STAR_PAGE_LENGTH = const(0x43)      # ESC C n | ESC C NUL n
_STAR_IMAGE_8 = const(0x4B)          # ESC K n NUL d...   8-dot image
_STAR_IMAGE_24 = const(0x6B)         # ESC k n NUL d...   24-dot image
_STAR_IMAGE_8_WIDE = const(0x4C)     # ESC L nL nH d...   8-dot image
_STAR_IMAGE_24_WIDE = const(0x58)    # ESC X nL nH d...   24-dot image
_STAR_RASTER = const(0x2A)           # ESC * r x ...   raster mode commands
_RASTER_R = const(0x72)              # the r of ESC * r x
_RASTER_ENTER = const(0x41)          # ESC * r A
_RASTER_QUIT = const(0x42)           # ESC * r B
_RASTER_LINE_FEED = const(0x62)      # b n1 n2 d...   raster mode: a dot row, then line feed
_RASTER_LINE = const(0x6B)           # k n1 n2 d...   raster mode: a dot row, no line feed
# ESC GS x (Star; generators send ESC GS t to Star printers in Epson emulation too)
_ESC_GS_CODE_PAGE = const(0x74)      # ESC GS t n   Star numbering
_ESC_GS_BUZZER = const(0x07)         # ESC GS BEL m t1 t2   ring the buzzer
_ESC_GS_BUZZER_DRIVE = const(0x19)   # ESC GS EM DC1|DC2 m n1 n2   external buzzer
_ESC_GS_QR = const(0x79)             # ESC GS y x ...
_ESC_GS_PDF417 = const(0x78)         # ESC GS x x ...
_ESC_GS_RASTER = const(0x53)         # ESC GS S m xL xH yL yH n d...
_ESC_GS_PAREN = const(0x28)          # ESC GS ( x pL pH ...
_ESC_GS_ABS_POSITION = const(0x41)   # ESC GS A n1 n2
_ESC_GS_REL_POSITION = const(0x52)   # ESC GS R n1 n2
_ESC_GS_ALIGN = const(0x61)          # ESC GS a n   alignment: framing only, in the text scan
_STAR_CODE_DATA = const(0x44)        # ESC GS y|x D ...   store 2D-code data
_STAR_CODE_PRINT = const(0x50)       # ESC GS y|x P   print it
_STAR_CODE_INFO = const(0x49)        # ESC GS y|x I   transmit its size information
# GS x
_GS_PAREN = const(0x28)              # GS ( x pL pH ...
_GS_LARGE = const(0x38)              # GS 8 L p1 p2 p3 p4 ...   GS ( L with a 32-bit length
_GS_BARCODE = const(0x6B)            # GS k m ...
_BARCODE_A_LAST = const(6)           # GS k m d... NUL   function A: m 0-6
_BARCODE_B_FIRST = const(65)         # GS k m n d...   function B: m 65-79
_BARCODE_B_LAST = const(79)
_GS_CUT = const(0x56)                # GS V m
_CUT_FEED_FIRST = const(65)          # GS V m n   functions B-D: m 65 and up
_GS_RASTER = const(0x76)             # GS v x ...
_GS_RASTER_PRINT = const(0x30)       # GS v 0 m xL xH yL yH d...
_GS_VAR_IMAGE = const(0x51)          # GS Q x ...
_GS_VAR_IMAGE_PRINT = const(0x30)    # GS Q 0 m xL xH yL yH d...   variable-height image
_GS_DEFINE_IMAGE = const(0x2A)       # GS * x y d...   define the downloaded bit image
_GS_PRINT_IMAGE = const(0x2F)        # GS / m   print the downloaded bit image
_GS_BMP = const(0x44)                # GS D x ...
_GS_BMP_DEFINE = const(0x30)         # GS D 0 fn 0 kc1 kc2 b 1 <BMP file>
_GS_BMP_NV = const(0x43)             # GS D 0 C ...   into NV memory
_GS_BMP_DOWNLOAD = const(0x53)       # GS D 0 S ...   into download memory
_GS_COUNTER = const(0x43)            # GS C x ...   counter (obsolete)
_GS_COUNTER_MODE = const(0x30)       # GS C 0 n m
_GS_COUNTER_A = const(0x31)          # GS C 1 aL aH bL bH n r
_GS_COUNTER_SET = const(0x32)        # GS C 2 nL nH
_GS_COUNTER_B = const(0x3B)          # GS C ; ...
_COUNTER_FIELD_END = const(0x3B)     # the ';' after each of the five GS C ; fields
_GS_ASB = const(0x61)                # GS a n   automatic status back
_GS_SEND_STATUS = const(0x72)        # GS r n
_GS_SEND_ID = const(0x49)            # GS I n
_GS_MAINTENANCE = const(0x67)        # GS g x m nL nH   maintenance counter
_GS_MAINTENANCE_SEND = const(0x32)   # GS g 2 m nL nH
_GS_MACRO = const(0x3A)              # GS :   start or end a macro definition
_GS_RUN_MACRO = const(0x5E)          # GS ^ r t m
# GS ( x letters (GS 8 L too) and their functions <fn>
_GS_CODE2D = const(0x6B)             # GS ( k cn fn ...   2D codes
_CODE2D_PDF417 = const(48)           # cn 48: PDF417 (Star ESC GS x codes are kept as it)
_CODE2D_QR = const(49)               # cn 49: QR Code (Star ESC GS y codes are kept as it)
_CODE2D_STORE = const(80)            # <fn 80>: store the symbol data
_CODE2D_PRINT = const(81)            # <fn 81>: print the stored symbol
_CODE2D_SEND_SIZE = const(82)        # <fn 82>: transmit its size information
_GS_GRAPHICS = const(0x4C)           # GS ( L m fn ...   graphics
_GRAPHICS_NV_CAPACITY = const(48)    # <fn 48>: transmit the NV graphics capacity
_GRAPHICS_NV_FREE = const(51)        # <fn 51>: transmit the remaining NV capacity
_GRAPHICS_DL_FREE = const(52)        # <fn 52>: transmit the remaining download capacity
_GRAPHICS_NV_KEYS = const(64)        # <fn 64>: transmit the NV key-code list
_GRAPHICS_PRINT_NV = const(69)       # <fn 69>: print NV graphics
_GRAPHICS_DL_KEYS = const(80)        # <fn 80>: transmit the download key-code list
_GRAPHICS_PRINT_DL = const(85)       # <fn 85>: print download graphics
_GRAPHICS_STORE_RASTER = const(112)  # <fn 112>: store raster graphics in the print buffer
_GRAPHICS_STORE_COLUMN = const(113)  # <fn 113>: store column graphics in the print buffer
_GS_PROCESS = const(0x48)            # GS ( H fn m ...   process-ID and offline responses
_PROCESS_ID = const(48)              # <fn 48>: request a process-ID response
_OFFLINE_RESPONSE = const(49)        # <fn 49>: request an offline response
_GS_SETUP = const(0x45)              # GS ( E fn ...   user setup
_SETUP_ENTER = const(1)              # <fn 1>: enter user setting mode
_SETUP_SEND_SWITCHES = const(4)      # <fn 4>: transmit the memory switches
_SETUP_SEND_CUSTOM = const(6)        # <fn 6>: transmit the customised values
_SETUP_SEND_SERIAL = const(12)       # <fn 12>: transmit the serial interface settings
_SETUP_SEND_BLUETOOTH = const(14)    # <fn 14>: transmit the Bluetooth settings
_SETUP_SEND_USB = const(16)          # <fn 16>: transmit the USB settings
_SETUP_SEND_LAYOUT = const(50)       # <fn 50>: transmit the paper layout
_SETUP_SEND_LABEL = const(52)        # <fn 52>: transmit the label and black-mark settings
_SETUP_SEND_BUZZER = const(100)      # <fn 100>: transmit the buzzer patterns
_GS_NV_RECORDS = const(0x43)         # GS ( C m fn ...   NV user memory records
_RECORD_SEND = const(50)             # <fn 50>: transmit a record
_RECORD_CAPACITY = const(51)         # <fn 51>: transmit the capacity
_RECORD_FREE = const(52)             # <fn 52>: transmit the remaining capacity
_RECORD_KEYS = const(53)             # <fn 53>: transmit the key-code list
_RECORD_SEND_BIN = const(2)          # <fn 2>-<fn 5>: the same four, numbered in binary
_RECORD_CAPACITY_BIN = const(3)
_RECORD_FREE_BIN = const(4)
_RECORD_KEYS_BIN = const(5)
_GS_SLIP = const(0x47)               # GS ( G fn ...   slip, MICR and scanner
# GS ( x functions that make the printer answer (checked only for those commands)
_GRAPHICS_REPLIES = (_GRAPHICS_NV_CAPACITY, _GRAPHICS_NV_FREE, _GRAPHICS_DL_FREE,
                     _GRAPHICS_NV_KEYS, _GRAPHICS_DL_KEYS)
_SETUP_REPLIES = (_SETUP_ENTER, _SETUP_SEND_SWITCHES, _SETUP_SEND_CUSTOM, _SETUP_SEND_SERIAL,
                  _SETUP_SEND_BLUETOOTH, _SETUP_SEND_USB, _SETUP_SEND_LAYOUT, _SETUP_SEND_LABEL,
                  _SETUP_SEND_BUZZER)
_RECORD_REPLIES = (_RECORD_SEND_BIN, _RECORD_CAPACITY_BIN, _RECORD_FREE_BIN, _RECORD_KEYS_BIN,
                   _RECORD_SEND, _RECORD_CAPACITY, _RECORD_FREE, _RECORD_KEYS)
# FS x
_FS_PAREN = const(0x28)              # FS ( x pL pH ...
_FS_KANJI_ON = const(0x26)           # FS &   Kanji (double-byte) character mode
_FS_KANJI_OFF = const(0x2E)          # FS .
_FS_KANJI_CODE = const(0x43)         # FS C n   JIS, Shift JIS or Shift JIS-2004
_FS_DEFINE_KANJI = const(0x32)       # FS 2 c1 c2 d...
_FS_PRINT_LOGO = const(0x70)         # FS p n m   print NV bit image n
_FS_DEFINE_LOGOS = const(0x71)       # FS q n [xL xH yL yH d...]...
_FS_CHECK_PAPER = const(0x61)        # FS a x ...   (obsolete)
_FS_CHECK_PAPER_0 = const(0x30)      # FS a 0 n   the one 4-byte form
_FS_NV_MEMORY = const(0x67)          # FS g x ...   NV user memory
_FS_NV_WRITE = const(0x31)           # FS g 1 m a1 a2 a3 a4 nL nH d...
_FS_NV_READ = const(0x32)            # FS g 2 m a1 a2 a3 a4 nL nH
# FS ( x letters and their functions <fn>
_FS_ENCODING = const(0x43)           # FS ( C fn ...   character encoding
_FS_SELECT_ENCODING = const(48)      # <fn 48>: one-byte code pages or UTF-8
_FS_SELECT_ENCODING_BIN = const(0)   # <fn 0>: the same
_FS_LOGO = const(0x45)               # FS ( E fn ...   top and bottom logo
_FS_LOGO_SEND = const(61)            # <fn 61>: transmit the logo settings
_FS_LABEL = const(0x4C)              # FS ( L fn ...   label and black-mark control
_FS_LABEL_LAYOUT = const(34)         # <fn 34>: transmit the paper layout
_FS_LABEL_POSITION = const(48)       # <fn 48>: transmit the positioning information
_FS_EXT_ASB = const(0x65)            # FS ( e m n   extended automatic status back
# DLE x n: the real-time commands by their n
_EOT_INK = const(7)                  # DLE EOT 7 a   ink status (a: one byte more)
_EOT_PEELER = const(8)               # DLE EOT 8 a   peeler status
_EOT_INTERFACE = const(18)           # DLE EOT 18 a   interface status
_ENQ_CLEAR = const(2)                # DLE ENQ 2   recover, clearing the buffers
_DC4_PULSE = const(1)                # DLE DC4 1 m t   drawer pulse
_DC4_POWER_OFF = const(2)            # DLE DC4 2 1 8
_DC4_BUZZER = const(3)               # DLE DC4 3 a n r t1 t2
_DC4_SEND_STATUS = const(7)          # DLE DC4 7 m
_DC4_CLEAR = const(8)                # DLE DC4 8 1 3 20 1 6 2 8   clear the buffers

_TEXT = const(0)
_HEADER = const(1)
_SKIP = const(2)
_COLLECT = const(3)
_SCAN = const(4)
_DLE_WAIT = const(5)

_SCAN_TABS = const(0)
_SCAN_BARCODE = const(1)   # GS k function A: NUL, alphabet or fixed maximum ends it
_SCAN_UNTIL = const(2)     # until a terminator byte (Star barcode RS, NUL lists)
_SCAN_COUNTER = const(3)   # GS C ; five fields each ended by ';'

_SCAN_BLOCK = const(64)    # text is checked for control bytes this many bytes at a time
_WORK_SIZE = const(512)    # memoryview chunks are copied here in pieces (memoryview has no find)
_HDR_SIZE = const(24)
_MAX_TABS = const(32)
_MAX_SCAN = const(255)
_MAX_PAGE_LINES = const(256)
_MAX_MACRO = const(64)
# Macro replays (GS ^) repeat recorded events: at most _MACRO_RECEIPT_BUDGET per receipt and
# _MACRO_CHUNK_BUDGET per _MACRO_WINDOW bytes of the stream, so that a few bytes cannot make the
# parser's output, and memory, grow without bound. The window is a stretch of the stream (by
# position), not a feed() call: the events are the same however the stream is split.
_MACRO_RECEIPT_BUDGET = const(512)
_MACRO_CHUNK_BUDGET = const(256)
_MACRO_WINDOW = const(512)
_CHAR_DOTS = const(12)     # font A width: turns ESC $ dot positions into columns
# Paper feeds are counted in 1/180 inch (Epson's ESC J unit); a text line is 1/6 inch.
_LINE_FEED_UNITS = const(30)
# The tear-off state, one list (Parser._tear): on MicroPython every instance attribute more
# makes attribute lookups in the byte path slower once the instance's map grows.
_TEAR_UNITS = const(0)     # a feed this long (1/180 inch) is a tear-off feed
_TEAR_FED = const(1)       # fed since the last thing printed
_TEAR_AT = const(2)        # offset just after a tear-off feed not yet followed by content, or -1
_TEAR_FIRST = const(3)     # what the receipt printed first (a second copy prints it again)

_CUTS = {0: "full", 1: "partial", 48: "full", 49: "partial", 65: "full", 66: "partial",
         97: "full", 98: "partial", 103: "full", 104: "partial"}
_STAR_CUTS = {0: "full", 1: "partial", 2: "full", 3: "partial",
              48: "full", 49: "partial", 50: "full", 51: "partial"}

_BARCODE_A = ("UPC-A", "UPC-E", "EAN13", "EAN8", "CODE39", "ITF", "CODABAR")
_BARCODE_B = ("UPC-A", "UPC-E", "EAN13", "EAN8", "CODE39", "ITF", "CODABAR", "CODE93",
              "CODE128", "GS1-128", "GS1-DATABAR", "GS1-DATABAR-TRUNCATED",
              "GS1-DATABAR-LIMITED", "GS1-DATABAR-EXPANDED", "CODE128-AUTO")
_BARCODE_A_MAX = (12, 12, 13, 8, 255, 255, 255)
_DIGITS = b"0123456789"
_BARCODE_A_ALPHABET = (_DIGITS, _DIGITS, _DIGITS, _DIGITS,
                       _DIGITS + b"ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./", _DIGITS,
                       _DIGITS + b"ABCDabcd$+-./:")
_STAR_BARCODES = ("UPC-E", "UPC-A", "EAN8", "EAN13", "CODE39", "ITF", "CODE128", "CODE93",
                  "CODABAR")
_CODE2D = {48: "PDF417", 49: "QR", 50: "MAXICODE", 51: "GS1-DATABAR-2D", 52: "COMPOSITE",
           53: "AZTEC", 54: "DATAMATRIX"}
_CODE2D_PREFIX = {51: 2, 52: 3}   # bytes before the data after fn 80 (else 1: m)

# ESC t numbering per vendor ("n:encoding ..."); unlisted numbers fall back to Epson's table.
_EPSON_PAGES = ("0:cp437 1:katakana 2:cp850 3:cp860 4:cp863 5:cp865 11:cp851 12:cp853 13:cp857 "
                "14:cp737 15:iso8859_7 16:cp1252 17:cp866 18:cp852 19:cp858 20:thai42 21:cp874 "
                "30:tcvn3_1 31:tcvn3_2 32:cp720 33:cp775 34:cp855 35:cp861 36:cp862 37:cp864 "
                "38:cp869 39:iso8859_2 40:iso8859_15 41:cp1098 42:cp774 43:cp772 44:cp1125 "
                "45:cp1250 46:cp1251 47:cp1253 48:cp1254 49:cp1255 50:cp1256 51:cp1257 "
                "52:cp1258 53:kz1048")
_VENDOR_PAGES = {
    "epson": "",
    "star": ("0:cp437 1:cp437 2:katakana 3:cp437 4:cp858 5:cp852 6:cp860 7:cp861 8:cp863 "
             "9:cp865 10:cp866 11:cp855 12:cp857 13:cp862 14:cp864 15:cp737 16:cp851 17:cp869 "
             "18:cp928 19:cp772 20:cp774 21:cp874 32:cp1252 33:cp1250 34:cp1251 96:thai42 "
             "97:thai11 98:thai13 99:thai14 100:thai16 101:thai17 102:thai18"),
    "bixolon": ("21:cp862 22:cp864 23:thai42 24:cp1253 25:cp1254 26:cp1257 27:farsi "
                "28:cp1251 29:cp737 30:cp775 31:thai14 32:cp862 33:cp1255 34:thai11 35:thai18 "
                "37:cp857 38:iso8859_7 39:thai16 40:cp1256 41:cp1258 42:khmer 46:cp866 "
                "47:cp1250 49:tcvn3_1 50:tcvn3_2 51:viscii"),
    "zjiang": ("6:latin_1 7:cp737 8:cp862 9:cp852 10:iran 20:iran2 21:cp3011 22:cp864 "
               "23:cp1251 24:cp747 25:cp1257 27:cp1258 28:cp864 31:cp862 32:cp1255 50:cp437 "
               "52:cp437 53:cp858 54:cp852 55:cp860 56:cp861 57:cp863 58:cp865 59:cp866 "
               "60:cp855 61:cp857 62:cp862 63:cp864 64:cp737 65:cp851 66:cp869 68:cp772 "
               "69:cp774 71:cp1252 72:cp1250 73:cp1251"),
    "xprinter": ("6:latin_1 7:cp1253 8:cp862 9:cp3012 11:cp1255 21:cp3011 22:cp864 "
                 "23:cp1251 24:cp737 25:cp1257 33:cp1256"),
    "rongta": ("6:cp1251 7:cp866 8:mik 9:cp755 10:iran 15:cp862 17:cp1253 20:iran2 "
               "21:cp3011 22:cp864 23:latin_1 24:cp737 25:cp1257 26:cp874 27:cp720 28:cp855 "
               "29:cp857 30:cp1250 31:cp775 32:cp1254 33:cp1255 34:cp1256 35:cp1258 "
               "36:iso8859_2 37:iso8859_3 38:iso8859_4 39:iso8859_5 40:iso8859_6 "
               "41:iso8859_7 42:iso8859_8 43:iso8859_9 44:iso8859_15 46:cp856 47:cp874"),
}
ENCODINGS = (None, "gb18030", "big5", "shift_jis", "cp949")
PROFILES = ("epson", "star")
VENDORS = tuple(sorted(_VENDOR_PAGES))

# ESC R: which ASCII characters each international set replaces ("from to" pairs).
_INTL = {
    1: "@à[°\\ç]§{é|ù}è~¨", 2: "@§[Ä\\Ö]Ü{ä|ö}ü~ß", 3: "#£", 4: "[Æ\\Ø]Å{æ|ø}å",
    5: "$¤@É[Ä\\Ö]Å^Ü`é{ä|ö}å~ü", 6: "[°]é`ù{à|ò}è~ì", 7: "#₧[¡\\Ñ]¿`´{¨|ñ", 8: "\\¥",
    9: "$¤@É[Æ\\Ø]Å^Ü`é{æ|ø}å~ü", 10: "@É[Æ\\Ø]Å^Ü`é{æ|ø}å~ü",
    11: "@á[¡\\Ñ]¿^é`´{í|ñ}ó~ú", 12: "@á[¡\\Ñ]¿^é`ü{í|ñ}ó~ú", 13: "\\₩",
    14: "@Ž[Š\\Đ]Ć^Č`ž{š|đ}ć~č", 15: "$¥", 16: "#₫", 17: "%٪*٭",
}
# Names this module uses that Python spells differently (or lacks: read from codec_tables.py
# if it has them, else as cp437).
_CODEC = {"jis": "euc_jp"}


def page_encoding(vendor, n):
    """The encoding a vendor's printers use for ESC t n, or None when the number is unknown.

    Looked up in the table strings themselves: no per-entry objects on the board's heap.
    """
    for spec in (_VENDOR_PAGES[vendor], _EPSON_PAGES):
        found = spec_page(spec, n)
        if found is not None:
            return found
    return None


def spec_page(spec, n):
    """The name after "n:" in a table string of space-separated "n:name" entries, or None.
    Searched in place: never a copy of the table, the heap may be tight."""
    key = "%d:" % n
    if spec.startswith(key):
        k = len(key)
    else:
        k = spec.find(" " + key)
        if k < 0:
            return None
        k += len(key) + 1
    end = spec.find(" ", k)
    return spec[k:end if end >= 0 else len(spec)]


def decode_text(raw, encoding, intl=0, errors="backslashreplace"):
    """Bytes of one text run as Unicode; None where this interpreter has no codec for them.

    Bytes the codec rejects (a broken multibyte sequence) read as \\xNN, so they show and can be
    counted; errors="strict" raises UnicodeError instead.
    """
    try:
        text = raw.decode("utf-8")
        # same length: plain ASCII, the same in every code page (cheaper than max(raw) < 0x80);
        # JIS Kanji pairs are ASCII bytes, so they never take this path
        if encoding == "jis" or (encoding != "utf-8" and len(text) != len(raw)):
            text = None
    except UnicodeError:
        text = None
    if text is None:
        if _codecs is None:
            return None        # the board: the server decodes (fields_mode.py reads tables)
        if encoding == "jis":
            raw = bytes(b | 0x80 if b >= 0x21 else b for b in raw)
        codec = _CODEC.get(encoding, encoding)
        try:
            _codecs.lookup(codec)
        except LookupError:
            from .codepages import table_text  # CPython only: the board stops above
            text = table_text(raw, encoding, errors)
            codec = "cp437"
        if text is None:
            text = bytes(raw).decode(codec, errors)
    if intl and encoding != "utf-8":
        text = _apply_intl(text, intl)
    return text


def decode_line(spans, errors="backslashreplace"):
    """The text of one printed line from its runs ((encoding, intl_set, bytes), ...): each run
    decoded, joined, trailing spaces removed. None where this interpreter lacks a codec (the
    board); the server decodes the same spans with this same function."""
    if len(spans) == 1:
        enc, intl, raw = spans[0]
        text = decode_text(raw, enc, intl, errors)
        return None if text is None else text.rstrip(" ")
    parts = []
    for enc, intl, raw in spans:
        text = decode_text(raw, enc, intl, errors)
        if text is None:
            return None
        parts.append(text)
    return "".join(parts).rstrip(" ")


def _apply_intl(text, intl):
    pairs = _INTL.get(intl)
    if pairs:
        for k in range(0, len(pairs), 2):
            if pairs[k] in text:
                text = text.replace(pairs[k], pairs[k + 1])
    return text


def _has_word(text):
    """Whether a line has a letter or a digit."""
    for c in text:
        if c.isalpha() or c.isdigit():
            return True
    return False


def _latin1(data):
    """Bytes as Latin-1 text. MicroPython has no latin-1 codec, and a str per byte costs its
    heap tens of bytes per byte (an 8 KB code: a MemoryError at 128k): each byte's UTF-8 form
    goes into one buffer, decoded once."""
    high = 0
    for b in data:
        if b >= 0x80:
            high += 1
    out = bytearray(len(data) + high)
    k = 0
    for b in data:
        if b < 0x80:
            out[k] = b
            k += 1
        else:
            out[k] = 0xC0 | (b >> 6)
            out[k + 1] = 0x80 | (b & 0x3F)
            k += 2
    return str(out, "utf-8")


def _code128_text(data):
    """Human-readable CODE128 data: {A {B {C code sets, {S shift, {1-{4 FNC, {{ literal."""
    out = []
    code_c = False
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b == 0x7B and i + 1 < n:   # '{'
            sel = data[i + 1]
            i += 2
            if sel == 0x43:           # 'C'
                code_c = True
            elif sel == 0x41 or sel == 0x42:
                code_c = False
            elif sel == 0x7B:
                out.append("{")
            continue
        if code_c:
            out.append("%02d" % b if b < 100 else "?")
        else:
            out.append(chr(b))
        i += 1
    return "".join(out)


def _code_text(data):
    try:
        return bytes(data).decode("utf-8")
    except UnicodeError:
        return _latin1(data)


class Parser:
    """Streaming ESC/POS parser. See the module docstring for the events.

    Options:
        profile      "epson" (default: Epson and compatibles) or "star" (Star Line Mode)
        codepage_map vendor numbering of ESC t: epson, star, bixolon, zjiang, xprinter, rongta
        encoding     the printer's default multibyte encoding: None, gb18030, big5, shift_jis,
                     cp949. When set, the printer starts (and ESC @ returns) in CJK mode.
        codepage     ESC t number the printer starts with (default 0)
        split_on_init  also end a receipt at ESC @ after printed content
        model        a printer model of escpos-printer-db ("TM-T88V", "POS-5890"): its
                     numbering of ESC t (ESC GS t for Star models) comes first; pages it has
                     but the database does not name are read with codepage_map
        tear_lines   printers without a cutter (0: off): a feed of this many lines or more
                     (ESC d/J, one or several in a row) ends the receipt when what follows
                     starts a new one: ESC @, or the receipt's first printed line (or image)
                     again, as in a second copy. The receipt ends just after the feed
                     (RECEIPT_END "tear"); a feed within a receipt does not split it
        keep_images  add the payload bytes to IMAGE events (bounded by max_payload)
        max_line, max_code, max_payload  caps (bytes) for a line, a 1D/2D code, one payload
        kanji_glyph_bytes  FS 2 glyph size (72 for 24x24 fonts)
    """

    def __init__(self, profile="epson", codepage_map=None, encoding=None, codepage=0,
                 split_on_init=False, keep_images=False, max_line=512, max_code=8192,
                 max_payload=16 * 1024 * 1024, kanji_glyph_bytes=72, model=None, tear_lines=0):
        if profile not in PROFILES:
            raise ValueError("unknown profile %r (known: %s)" % (profile, ", ".join(PROFILES)))
        if encoding not in ENCODINGS:
            raise ValueError("unknown encoding %r (known: %s)"
                             % (encoding, ", ".join(e for e in ENCODINGS if e)))
        self._star = profile == "star"
        self._vendor = codepage_map or ("star" if self._star else "epson")
        if self._vendor not in _VENDOR_PAGES:
            raise ValueError("unknown code-page map %r (known: %s)"
                             % (self._vendor, ", ".join(sorted(_VENDOR_PAGES))))
        # (code-page table, numbered by ESC GS t (Star), printer_models.page, its mark for a
        # page the database does not name), or None; one attribute (see _TEAR_UNITS)
        self._model = None
        if model:
            # the models' tables are read only when a model is set: off the heap otherwise
            from . import printer_models
            found = printer_models.find(model)
            if found is None:
                raise ValueError("unknown printer model %r (known: those of escpos-printer-db, "
                                 "`tilltap parse --printer-model list`)" % model)
            self._model = (found[0], found[2], printer_models.page, printer_models.UNKNOWN_PAGE)
        self._tear = [tear_lines * _LINE_FEED_UNITS, 0, -1, None] if tear_lines else None
        self._default_mb = encoding
        self._default_page = codepage
        self._split_on_init = split_on_init
        self._keep_images = keep_images
        self._max_line = max_line
        self._max_code = max_code
        self._max_payload = max_payload
        self._glyph_bytes = kanji_glyph_bytes
        self._line = bytearray(max_line)
        self._line_mv = memoryview(self._line)
        self._hdr = bytearray(_HDR_SIZE)
        self._hdr_mv = memoryview(self._hdr)
        self._work = bytearray(_WORK_SIZE)
        self._work_mv = memoryview(self._work)
        self._out = []
        self._stats = {}
        for key in ("bytes", "commands", "lines", "barcodes", "codes2d", "images", "image_bytes",
                    "cuts", "receipts", "requests", "drawer_kicks", "unknown_commands", "desync",
                    "truncated_lines", "truncated_codes", "page_lines_dropped",
                    "suppressed_bytes", "unknown_codepages", "truncated_jobs",
                    "macro_events_dropped", "tear_splits"):
            self._stats[key] = 0
        self._on_prefix_b = self._on_prefix
        self._exec_b = self._exec
        self._done_b = self._done
        self._reset_stream()

    # ---- public API -------------------------------------------------------------------------

    def feed(self, data, n=None, start=0):
        """Parse one chunk; returns the list of events completed by it.

        n, start: parse only data[start:start + n]. A bytes or bytearray is parsed in place
        (capture passes its backlog buffer and the span to parse); a memoryview is copied in
        pieces first, since it has no find().
        """
        out = self._out = []
        if n is None:
            n = len(data) - start
        if isinstance(data, memoryview):
            self._feed_view(data, start, start + n)
        else:
            self._run(data, start, start + n)
        return out

    def _feed_view(self, data, pos, end):
        # apart from feed(), which runs per slice: its frame stays off the heap (tap.py,
        # Frames)
        while pos < end:
            k = end - pos if end - pos < _WORK_SIZE else _WORK_SIZE
            self._work_mv[:k] = data[pos:pos + k]
            self._run(self._work, 0, k)
            pos += k

    def idle(self):
        """The caller saw no bytes for its idle gap: end the receipt in progress, if any."""
        out = self._out = []
        self._end_receipt("idle")
        return out

    def close(self):
        """End of stream (a job's connection closed): returns the events still pending, then
        starts afresh from the printer's power-on state (offsets from 0). A stream that ends
        inside a command (an image cut off mid-payload) ends its receipt as "truncated"."""
        out = self._out = []
        if self._mode != _TEXT and self._mode != _DLE_WAIT:
            self._stats["truncated_jobs"] += 1
            self._end_receipt("truncated")
        else:
            self._end_receipt("end")
        self._reset_stream()
        return out

    def may_ask(self, buf, start, end):
        """False when buf[start:end], fed next, cannot make a REQUEST event: the parser is
        between commands and none of REQUEST_PREFIXES is among the bytes (one bulk find each,
        no parsing). True when it may (then only parsing them tells)."""
        if self._mode != _TEXT:
            return True
        for prefix in REQUEST_PREFIXES:
            if buf.find(prefix, start, end) >= 0:
                return True
        if self._star:
            for prefix in STAR_REQUEST_PREFIXES:
                if buf.find(prefix, start, end) >= 0:
                    return True
        return False

    def stats(self):
        """Counters: bytes, commands, lines, codes, images, cuts, receipts, and what was cut
        off; unknown_codepages: ESC t / ESC GS t numbers the printer's map (model or vendor)
        does not have (read as cp437: the map is likely wrong); tear_splits: receipts ended
        at a tear-off feed."""
        return dict(self._stats)

    # ---- state ------------------------------------------------------------------------------

    def _reset_stream(self):
        self._base = 0             # stream offset of the buffer being parsed
        self._cursor = 0           # stream offset just after the command being run
        self._mode = _TEXT
        self._hlen = 0
        self._need = 0
        self._next = None
        self._remain = 0
        self._data = None
        self._data_cap = 0
        self._content = False
        tear = self._tear
        if tear is not None:
            tear[_TEAR_FED] = 0
            tear[_TEAR_AT] = -1
            tear[_TEAR_FIRST] = None
        self._cut_end = None       # [cut, offset] of a receipt ended by a cut, not yet emitted
        self._pending_img = None
        self._page = None
        self._macro = []
        self._macro_left = _MACRO_RECEIPT_BUDGET
        self._macro_chunk_left = _MACRO_CHUNK_BUDGET
        self._macro_window = 0     # the _MACRO_WINDOW stretch of the stream the budget is for
        self._raster = False
        self._reset_printer()

    def _reset_printer(self):
        """ESC @: power-on text state (code table, CJK mode, page mode, device select)."""
        self._llen = 0
        self._runs = []
        self._run_key = None
        self._line_cut = False
        self._nl = 0
        self._page_mode = False
        self._page = None
        self._selected = True
        self._utf8 = False
        self._intl = 0
        self._page_no = self._default_page
        model = self._model
        self._page_enc = self._page_lookup(self._vendor, model is not None and model[1]) or \
            "cp437"
        self._kanji = self._default_mb is not None
        self._mb = self._default_mb or "gb18030"
        self._tabs = None
        self._stored = {}
        self._recording = False
        self._set_key()

    def _set_key(self):
        if self._utf8:
            enc = "utf-8"
        elif self._kanji:
            enc = self._mb
        else:
            enc = self._page_enc
        self._key = (enc, self._intl)

    # ---- main loop --------------------------------------------------------------------------

    def _run(self, buf, i, n):
        """Parse buf[i:n]. During the run self._base is the stream offset of buf[0]."""
        mv = memoryview(buf)
        self._stats["bytes"] += n - i
        self._at_lf = self._at_esc = self._at_gs = -1     # not searched yet in this buffer
        self._base -= i
        # few locals here and the modes' work in calls of their own, so that this frame (per
        # slice) stays off the heap (tap.py, Frames)
        while i < n:
            if self._mode == _TEXT:
                if self._raster:
                    i = self._raster_byte(buf[i], i)
                else:
                    i = self._text(buf, mv, i, n)
            elif self._mode == _HEADER:
                i = self._header(mv, i, n)
            elif self._mode == _SKIP or self._mode == _COLLECT:
                i = self._payload(mv, i, n)
            elif self._mode == _SCAN:
                i = self._scan(buf, i, n)
            else:
                i = self._dle_lookahead(buf[i], i)
        self._base += n

    def _payload(self, mv, i, n):
        # a command's counted payload: skipped (kept when an image's bytes are wanted) or
        # collected (a code's data), without a look at its bytes
        take = self._remain if self._remain < n - i else n - i
        if self._mode == _COLLECT or self._data is not None:
            self._keep(mv, i, take)
        self._remain -= take
        if self._remain == 0:
            self._next()
        return i + take

    def _header(self, mv, i, n):
        # a command's fixed bytes
        have = self._hlen
        take = self._need - have
        take = min(take, n - i)
        self._hdr_mv[have:have + take] = mv[i:i + take]
        i += take
        self._hlen = have + take
        if self._hlen == self._need:
            self._cursor = self._base + i
            self._next()
        return i

    def _keep(self, mv, i, take):
        room = self._data_cap - len(self._data)
        if take > room:
            self._data_overflow = True
            take = room
        if take > 0:
            self._data.extend(mv[i:i + take])

    def _text(self, buf, mv, i, n):
        """Text state: printable runs in bulk, style-only commands and ignored control bytes
        skipped inline, line feeds inline, fixed-length commands wholly in the buffer run
        inline, any other command left to _control.

        The next LF, ESC and GS of this buffer are found once (bytes.find) and kept until
        passed, so each byte is searched once whatever the number of commands between; a
        command right after a command is seen without a search.
        """
        star = self._star
        ignored = _STAR_IGNORED if star else _IGNORED
        # module tables, the search positions and the count as locals: a global or attribute
        # costs a dict lookup per use on MicroPython, and this loop runs once per command of a
        # command-dense line
        esc_fix = _STAR_ESC_FIX if star else _ESC_FIX
        esc_acts = _STAR_ACTS if star else _ACTS
        gs_fix = _GS_FIX
        gs_acts = _GS_ACTS
        lf = self._at_lf
        esc = self._at_esc
        gs = self._at_gs
        styles = 0
        while i < n:
            if lf < i:
                lf = buf.find(b"\n", i, n)
                if lf < 0:
                    lf = n
            if esc < i:
                esc = buf.find(b"\x1b", i, n)
                if esc < 0:
                    esc = n
            if gs < i:
                gs = buf.find(b"\x1d", i, n)
                if gs < 0:
                    gs = n
            j = lf if lf < esc else esc
            if gs < j:      # noqa: PLR1730 -- min() is a builtin call per command here
                j = gs
            if j > i:
                if j - i > _SCAN_BLOCK or min(mv[i:j]) < 0x20:
                    j = self._first_control(buf, mv, i, j)
                if j > i:
                    self._put_text(mv, i, j)
            if j >= n:
                i = n
                break
            c = buf[j]
            if c == _LF:
                if self._nl == _CR:
                    self._nl = 0           # second half of CR LF
                else:
                    if self._llen or self._pending_img is None:    # _newline(), inline
                        self._end_line(True)
                    self._nl = _LF
                i = j + 1
            elif ignored[c]:
                k = j + 1
                while k < n and ignored[buf[k]]:
                    k += 1
                self._nl = 0
                i = k
            elif (c == _ESC or c == _GS) and j + 1 < n:
                self._nl = 0
                stop = 0       # 1: left to _control; 2: a command began a payload or a mode
                while True:    # a run of commands: each next one seen without a search
                    d = buf[j + 1]
                    if c == _GS:
                        total = gs_fix[d]
                        acts = gs_acts[d]
                    else:
                        total = esc_fix[d]
                        acts = esc_acts[d]
                    if not total or j + total > n:
                        # Star Line Mode's alignment, ESC GS a n (several per receipt), is
                        # framing only: it stays in the scan too
                        if total or not star or d != _GS or c != _ESC or j + 4 > n \
                                or buf[j + 2] != _ESC_GS_ALIGN:
                            stop = 1           # a payload, or split by the buffer's end
                            break
                        total = 4
                    i = j + total
                    if acts:
                        # it acts, wholly in this buffer: run here; the scan goes on unless
                        # it began a payload or a mode
                        self._run_fixed(mv, j, total)
                        if self._mode != _TEXT or self._raster:
                            stop = 2
                            break
                    else:
                        styles += 1        # a style command (bold, align, size...): framing
                    if i + 1 >= n:
                        break
                    c = buf[i]
                    if c != _ESC and c != _GS:
                        break
                    j = i
                if stop:
                    if stop == 1:
                        i = self._control(c, buf, j, n)
                    break
            else:
                i = self._control(c, buf, j, n)
                break
        self._at_lf = lf
        self._at_esc = esc
        self._at_gs = gs
        if styles:
            self._stats["commands"] += styles
        return i

    def _first_control(self, buf, mv, i, j):
        """The first position in [i, j) of a control byte (< 0x20), else j: a min() per
        _SCAN_BLOCK bytes, a byte loop only in the block that has one."""
        while i < j:
            e = i + _SCAN_BLOCK
            e = min(e, j)
            if min(mv[i:e]) < 0x20:
                while buf[i] >= 0x20:
                    i += 1
                return i
            i = e
        return j

    def _put_text(self, mv, i, j):
        self._nl = 0
        if not self._selected:
            self._stats["suppressed_bytes"] += j - i
            return
        llen = self._llen
        if self._run_key is not self._key:
            self._runs.append((llen, self._key))
            self._run_key = self._key
        k = j - i
        if llen + k > self._max_line:
            if not self._line_cut:
                self._line_cut = True
                self._stats["truncated_lines"] += 1
            k = self._max_line - llen
        if k > 0:
            self._line_mv[llen:llen + k] = mv[i:i + k]
            self._llen = llen + k

    def _pad_to(self, column):
        """Spaces up to a column (at least one between printed words): ESC $, ESC \\, HT."""
        llen = self._llen
        if llen == 0 and column <= 0:
            return
        pad = column - llen
        if pad < 1:
            pad = 1 if llen and self._line[llen - 1] != 0x20 else 0
        if pad:
            spaces = b" " * pad
            self._put_text(memoryview(spaces), 0, pad)

    def _control(self, c, buf, j, n):
        if c == _LF or c == _CR:
            if self._nl and self._nl != c:
                self._nl = 0           # second half of CR LF / LF CR
            else:
                self._newline()
                self._nl = c
            return j + 1
        self._nl = 0
        if c == _ESC or c == _GS or (c == _FS and not self._star):
            if j + 1 < n:
                # fast path: a fixed-length command wholly in this buffer runs at once
                if c == _ESC:
                    total = (_STAR_ESC_FIX if self._star else _ESC_FIX)[buf[j + 1]]
                else:
                    total = (_GS_FIX if c == _GS else _FS_FIX)[buf[j + 1]]
                if total and j + total <= n:
                    self._run_fixed(memoryview(buf), j, total)
                    return j + total
            self._begin(c)
        elif c == _DLE:
            if j + 1 < n:
                return self._dle_lookahead(buf[j + 1], j + 1)
            self._mode = _DLE_WAIT
        elif c == _HT:
            col = self._llen
            stops = self._tabs
            target = (col // 8 + 1) * 8
            if stops:
                for s in stops:
                    if s > col:
                        target = s
                        break
            self._pad_to(target)
        elif c == _FF:
            if self._page_mode:
                self._print_page()
                self._page_mode = False
                self._page = None
        elif c == _CAN:
            if self._page_mode:
                self._drop_page()
            elif self._star:
                self._end_line()
                self._reset_printer()
        elif self._star:
            self._cursor = self._base + j + 1    # a drawer kick: the receipt ends after it
            self._star_control(c)
        return j + 1

    def _run_fixed(self, mv, j, total):
        """Run the fixed-length command of `total` bytes at mv[j], wholly in this buffer."""
        self._hdr_mv[:total] = mv[j:j + total]
        self._hlen = total
        self._cursor = self._base + j + total
        self._exec()

    def _star_control(self, c):
        if c == _ENQ or c == _EOT:
            self._request("ENQ" if c == _ENQ else "EOT")
        elif c == _BEL or c == _FS:
            self._drawer((1,))
        elif c == _SUB or c == _EM:
            self._drawer((2,))

    def _dle_lookahead(self, b, i):
        # DLE starts a command only before EOT, ENQ or DC4; otherwise it is an ignored control
        # byte and b is ordinary data (not consumed here).
        self._mode = _TEXT
        if b == _EOT or b == _ENQ or b == _DC4:
            self._hdr[0] = _DLE
            self._hdr[1] = b
            self._hlen = 2
            self._want(3, self._on_dle)
            return i + 1
        return i

    # ---- command framing helpers ------------------------------------------------------------

    def _begin(self, c):
        self._hdr[0] = c
        self._hlen = 1
        self._need = 2
        self._next = self._on_prefix_b
        self._mode = _HEADER

    def _want(self, need, then):
        """Collect header bytes up to `need` in total, then call `then`."""
        if self._hlen >= need:
            then()
            return
        self._need = need
        self._next = then
        self._mode = _HEADER

    def _fixed(self, total):
        """A command of a known total length: run it once its bytes are in."""
        self._want(total, self._exec_b)

    def _skip(self, count, then=None):
        """Skip `count` payload bytes in bulk, then call `then` (default: command done)."""
        if count <= 0:
            (then or self._done_b)()
            return
        self._remain = count
        self._next = then or self._done_b
        self._mode = _SKIP

    def _collect(self, count, cap, then):
        """Keep up to `cap` of the next `count` bytes in self._data, then call `then`."""
        self._data = bytearray()
        self._data_cap = cap
        self._data_overflow = False
        if count <= 0:
            then()
            return
        self._remain = count
        self._next = then
        self._mode = _COLLECT

    def _done(self):
        self._mode = _TEXT
        self._hlen = 0
        self._data = None
        self._stats["commands"] += 1

    def _unknown(self):
        self._stats["unknown_commands"] += 1
        self._done()

    def _desync(self):
        """An absurd length: drop what was read of the command and carry on as text."""
        self._stats["desync"] += 1
        self._done()

    def _too_big(self, size):
        return size > self._max_payload

    def _u16(self, at):
        return self._hdr[at] | (self._hdr[at + 1] << 8)

    # ---- prefixes ---------------------------------------------------------------------------

    def _on_prefix(self):
        p = self._hdr[0]
        c = self._hdr[1]
        if self._star:
            if p == _ESC:
                self._star_esc(c)
            else:
                self._gs(c)
            return
        if p == _ESC:
            total = _ESC_FIX[c]
            if total:
                self._fixed(total)
            elif c == _ESC_PAREN:
                self._want(5, self._p16_skip)
            elif c == _BIT_IMAGE:
                self._want(3, self._esc_star)
            elif c == _DEFINE_CHARS:
                self._want(5, self._esc_amp)
            elif c == _TAB_STOPS:
                self._scan_start(_SCAN_TABS)
            elif c == _GS:
                self._want(3, self._esc_gs)
            else:
                self._unknown()
        elif p == _GS:
            self._gs(c)
        else:
            self._fs(c)

    def _gs(self, c):
        total = _GS_FIX[c]
        if total:
            self._fixed(total)
        elif c == _GS_PAREN:
            self._want(5, self._gs_paren)
        elif c == _GS_BARCODE:
            self._want(3, self._gs_k)
        elif c == _GS_RASTER:
            self._want(3, self._gs_v)
        elif c == _GS_CUT:
            self._want(3, self._gs_cut)
        elif c == _GS_LARGE:
            self._want(3, self._gs_8)
        elif c == _GS_DEFINE_IMAGE:
            self._want(4, self._gs_star)
        elif c == _GS_VAR_IMAGE:
            self._want(3, self._gs_q)
        elif c == _GS_BMP:
            self._want(4, self._gs_d)
        elif c == _GS_COUNTER:
            self._want(3, self._gs_c)
        elif c >= 0x80:
            self._fixed(3)        # Custom's GS E0 n and friends
        else:
            self._unknown()

    def _fs(self, c):
        total = _FS_FIX[c]
        if total:
            self._fixed(total)
        elif c == _FS_PAREN:
            self._want(5, self._fs_paren)
        elif c == _FS_DEFINE_KANJI:
            self._want(4, lambda: self._skip(self._glyph_bytes))
        elif c == _FS_CHECK_PAPER:
            self._want(3, lambda: self._fixed(4 if self._hdr[2] == _FS_CHECK_PAPER_0 else 3))
        elif c == _FS_NV_MEMORY:
            self._want(3, self._fs_g)
        elif c == _FS_DEFINE_LOGOS:
            self._want(3, self._fs_q)
        else:
            self._unknown()

    # ---- fixed-length commands that change state or mean something ---------------------------

    def _exec(self):
        h = self._hdr
        p = h[0]
        c = h[1]
        if p == _ESC:
            acts = _STAR_ACTS if self._star else _ACTS
        else:
            acts = _GS_ACTS if p == _GS else _FS_ACTS
        if not acts[c]:
            self._done()
            return
        if self._star and p == _ESC:
            self._star_exec(c)
        elif p == _ESC:
            if c == _INIT:
                self._init()
            elif c == _SELECT_CODE_TABLE:
                self._page_no = h[2]
                self._codepage_changed(self._vendor, False)
            elif c == _INTL_CHARSET:
                self._intl = h[2]
                self._set_key()
            elif c == _FEED_LINES:
                self._feed_lines(h[2] * _LINE_FEED_UNITS)
            elif c == _FEED_UNITS:
                self._feed_lines(h[2])
            elif c == _BACK_FEED_UNITS or c == _BACK_FEED_LINES:
                self._feed_lines(0)
            elif c == _CUT_ONE_POINT or c == _CUT_THREE_POINTS:
                self._do_cut("partial")
            elif c == _DRAWER_PULSE:
                self._drawer((5 if h[2] & 1 else 2,))
            elif c == _SELECT_DEVICE:
                self._end_line()
                self._selected = bool(h[2] & 1)
            elif c == _PAGE_MODE:
                self._end_line()
                self._page_mode = True
                self._page = []
            elif c == _STANDARD_MODE:
                self._drop_page()
                self._page_mode = False
            elif c == _PRINT_PAGE:
                if self._page_mode:
                    self._print_page()
            elif c == _ABS_POSITION:
                self._pad_to(self._u16(2) // _CHAR_DOTS)
            elif c == _REL_POSITION:
                rel = self._u16(2)
                if rel < 0x8000:
                    self._pad_to(self._llen + rel // _CHAR_DOTS)
            elif c == _SEND_PERIPHERAL or c == _SEND_PAPER:
                self._request("ESC " + chr(c))
        elif p == _GS:
            if c == _GS_ASB:
                if h[2]:
                    self._request("GS a")
            elif c == _GS_SEND_STATUS or c == _GS_SEND_ID:
                self._request("GS %s %d" % (chr(c), h[2]))
            elif c == _GS_MAINTENANCE:
                if h[2] == _GS_MAINTENANCE_SEND:
                    self._request("GS g 2")
            elif c == _GS_PRINT_IMAGE:
                self._image("logo", 0, 0, 0)
            elif c == _GS_MACRO:
                self._recording = not self._recording
                if self._recording:
                    self._macro = []
            elif c == _GS_RUN_MACRO:
                self._replay_macro(h[2])
        else:
            if c == _FS_KANJI_ON:
                self._kanji = True
                self._set_key()
            elif c == _FS_KANJI_OFF:
                self._kanji = False
                self._set_key()
            elif c == _FS_KANJI_CODE:
                self._mb = ("jis", "shift_jis", "shift_jis_2004")[h[2] % 3] \
                    if h[2] in (0, 1, 2, 48, 49, 50) else self._mb
                self._set_key()
            elif c == _FS_PRINT_LOGO:
                self._image("logo", 0, 0, 0)
        self._done()

    def _page_lookup(self, vendor, star_numbering):
        """The encoding of code page self._page_no selected by ESC t (star_numbering False) or
        ESC GS t (True): the model's table for its own command, else the vendor map; None
        when the number is not in the map."""
        model = self._model
        if model is not None and star_numbering == model[1]:
            enc = model[2](model[0], self._page_no)
            if enc != model[3]:     # else the model has the page, the vendor map says which
                return enc
        return page_encoding(vendor, self._page_no)

    def _codepage_changed(self, vendor, star_numbering):
        enc = self._page_lookup(vendor, star_numbering)
        if enc is None:
            self._stats["unknown_codepages"] += 1
            enc = "cp437"
        self._page_enc = enc
        self._set_key()

    def _init(self):
        self._end_line()
        self._flush_cut()
        tear = self._tear
        if tear is not None and tear[_TEAR_AT] >= 0:
            self._end_receipt("tear", None, tear[_TEAR_AT])
        elif self._split_on_init:
            self._end_receipt("init", None, self._cursor - 2)
        self._reset_printer()

    # ---- DLE real-time commands -------------------------------------------------------------

    def _on_dle(self):
        kind = self._hdr[1]
        n = self._hdr[2]
        if kind == _EOT:
            if n == _EOT_INK or n == _EOT_PEELER or n == _EOT_INTERFACE:
                self._want(4, lambda: self._dle_done("DLE EOT %d" % n))
            else:
                self._dle_done("DLE EOT %d" % n)
        elif kind == _ENQ:
            if n == _ENQ_CLEAR:
                self._end_receipt("abort")
            self._done()
        else:
            total = {_DC4_PULSE: 5, _DC4_POWER_OFF: 5, _DC4_BUZZER: 8, _DC4_SEND_STATUS: 4,
                     _DC4_CLEAR: 10}.get(n, 3)
            self._want(total, self._dc4)

    def _dle_done(self, name):
        self._request(name)
        self._done()

    def _dc4(self):
        fn = self._hdr[2]
        if fn == _DC4_PULSE:
            self._drawer((5 if self._hdr[3] & 1 else 2,))
        elif fn == _DC4_POWER_OFF or fn == _DC4_SEND_STATUS or fn == _DC4_CLEAR:
            self._request("DLE DC4 %d" % fn)
            if fn == _DC4_CLEAR:
                self._end_receipt("abort")
        self._done()

    # ---- ESC specials -----------------------------------------------------------------------

    def _p16_skip(self):
        self._skip(self._u16(3))

    def _esc_star(self):
        m = self._hdr[2]
        if m in (0, 1, 32, 33):
            self._want(5, self._esc_star_data)
        else:
            self._fixed(3)       # out-of-range m: the bytes after it are ordinary data

    def _esc_star_data(self):
        n = self._u16(3)
        dots = 24 if self._hdr[2] >= 32 else 8
        size = n * dots // 8
        self._image_payload("column", n, dots, size)

    def _esc_amp(self):
        y, c1, c2 = self._hdr[2], self._hdr[3], self._hdr[4]
        if not (1 <= y <= 6 and 0x20 <= c1 <= c2 <= 0x7E):
            self._desync()
            return
        self._glyphs_left = c2 - c1 + 1
        self._glyph_y = y
        self._want(6, self._esc_amp_glyph)

    def _esc_amp_glyph(self):
        x = self._hdr[5]
        if x > 48:
            self._desync()
            return
        self._glyphs_left -= 1
        self._skip(self._glyph_y * x, self._esc_amp_next)

    def _esc_amp_next(self):
        if self._glyphs_left:
            self._hlen = 5
            self._want(6, self._esc_amp_glyph)
        else:
            self._done()

    def _esc_gs(self):
        c = self._hdr[2]
        if c == _ESC_GS_CODE_PAGE:
            self._want(4, self._star_codepage)
        elif c == _ESC_GS_BUZZER:
            self._fixed(6)
        elif c == _ESC_GS_BUZZER_DRIVE:
            self._fixed(7)
        elif self._star and c == _ESC_GS_QR:
            self._want(4, self._star_qr)
        elif self._star and c == _ESC_GS_PDF417:
            self._want(4, self._star_pdf417)
        elif self._star and c == _ESC_GS_RASTER:
            self._want(9, self._star_raster_image)
        elif self._star and c == _ESC_GS_PAREN:
            self._want(6, lambda: self._skip(self._u16(4)))
        elif self._star and (c == _ESC_GS_ABS_POSITION or c == _ESC_GS_REL_POSITION):
            self._fixed(5)
        else:
            self._fixed(4)

    def _star_codepage(self):
        self._page_no = self._hdr[3]
        self._codepage_changed("star", True)
        self._done()

    # ---- GS specials ------------------------------------------------------------------------

    def _gs_cut(self):
        m = self._hdr[2]
        cut = _CUTS.get(m)
        if cut is None:
            self._unknown()
        elif m >= _CUT_FEED_FIRST:
            self._want(4, lambda: self._cut_done(cut))
        else:
            self._cut_done(cut)

    def _cut_done(self, kind):
        self._do_cut(kind)
        self._done()

    def _gs_v(self):
        if self._hdr[2] != _GS_RASTER_PRINT:
            self._unknown()
            return
        self._want(8, self._gs_v_data)

    def _gs_v_data(self):
        x = self._u16(4)
        y = self._u16(6)
        self._image_payload("raster", x * 8, y, x * y)

    def _gs_q(self):
        if self._hdr[2] != _GS_VAR_IMAGE_PRINT:
            self._unknown()
            return
        self._want(8, lambda: self._image_payload("raster", self._u16(4), self._u16(6) * 8,
                                                 self._u16(4) * self._u16(6)))

    def _gs_star(self):
        self._skip(8 * self._hdr[2] * self._hdr[3])

    def _gs_d(self):
        kind = self._hdr[3]
        if self._hdr[2] != _GS_BMP_DEFINE or (kind != _GS_BMP_NV and kind != _GS_BMP_DOWNLOAD):
            self._unknown()
            return
        self._want(15, self._gs_d_bmp)

    def _gs_d_bmp(self):
        h = self._hdr
        size = h[11] | (h[12] << 8) | (h[13] << 16) | (h[14] << 24)
        # the payload is a BMP file: "BM", then its size
        if h[9] != 0x42 or h[10] != 0x4D or size < 6 or self._too_big(size):
            self._desync()
            return
        self._skip(size - 6)

    def _gs_c(self):
        sub = self._hdr[2]
        if sub == _GS_COUNTER_MODE or sub == _GS_COUNTER_SET:
            self._fixed(5)
        elif sub == _GS_COUNTER_A:
            self._fixed(9)
        elif sub == _GS_COUNTER_B:
            self._scan_start(_SCAN_COUNTER)
        else:
            self._unknown()

    def _gs_k(self):
        m = self._hdr[2]
        if m <= _BARCODE_A_LAST:
            self._symbology = m
            self._scan_start(_SCAN_BARCODE)
        elif _BARCODE_B_FIRST <= m <= _BARCODE_B_LAST:
            self._want(4, self._gs_k_b)
        else:
            self._fixed(3)       # out-of-range m: the bytes after it are ordinary data

    def _gs_k_b(self):
        n = self._hdr[3]
        self._collect(n, n, lambda: self._barcode(_BARCODE_B[self._hdr[2] - _BARCODE_B_FIRST]))

    def _barcode(self, symbology):
        data = self._data
        text = _code128_text(data) if symbology.startswith("CODE128") or \
            symbology == "GS1-128" else _latin1(data)
        if self._selected:
            self._end_image()
            self._stats["barcodes"] += 1
            self._begin_content()
            self._emit((BARCODE, symbology, text))
        self._done()

    def _gs_paren(self):
        letter = self._hdr[2]
        length = self._u16(3)
        if length < 2 or letter not in (_GS_CODE2D, _GS_GRAPHICS, _GS_PROCESS, _GS_SETUP,
                                        _GS_NV_RECORDS, _GS_SLIP):
            self._skip(length)
            return
        self._paren_base = 5
        self._paren_len = length
        self._want(7, self._gs_paren_fn)

    def _gs_8(self):
        if self._hdr[2] != _GS_GRAPHICS:
            self._unknown()
            return
        self._want(7, self._gs_8_len)

    def _gs_8_len(self):
        h = self._hdr
        length = h[3] | (h[4] << 8) | (h[5] << 16) | (h[6] << 24)
        if self._too_big(length):
            self._desync()
            return
        if length < 2:
            self._skip(length)
            return
        self._paren_base = 7
        self._paren_len = length
        self._want(9, self._gs_paren_fn)

    def _gs_paren_fn(self):
        # hdr[base] and hdr[base+1] are the two bytes after the length: (m, fn) or (cn, fn)
        # for GS ( k, L and C; (fn, first parameter) for GS ( E, H and G
        letter = self._hdr[2]
        base = self._paren_base
        rest = self._paren_len - 2
        a = self._hdr[base]
        fn = self._hdr[base + 1]
        if letter == _GS_CODE2D:
            if fn == _CODE2D_STORE:
                cap = self._max_code + 3
                self._collect(rest, cap, lambda: self._store_code(a))
            elif fn == _CODE2D_PRINT:
                self._skip(rest, lambda: self._print_code(a))
            else:
                if fn == _CODE2D_SEND_SIZE:
                    self._request("GS ( k 82")
                self._skip(rest)
        elif letter == _GS_GRAPHICS:
            if (fn == _GRAPHICS_STORE_RASTER or fn == _GRAPHICS_STORE_COLUMN) and rest >= 8:
                self._want(base + 10, self._graphics)
            else:
                if fn in _GRAPHICS_REPLIES:
                    self._request("GS ( L %d" % fn)
                elif fn == _GRAPHICS_PRINT_NV or fn == _GRAPHICS_PRINT_DL:
                    self._image("logo", 0, 0, 0)
                self._skip(rest)
        else:
            if letter != _GS_NV_RECORDS:
                fn = a      # GS ( E, H and G: the function is the first byte after the length
            if (letter == _GS_PROCESS and (fn == _PROCESS_ID or fn == _OFFLINE_RESPONSE)) or \
                    (letter == _GS_SETUP and fn in _SETUP_REPLIES) or \
                    (letter == _GS_NV_RECORDS and fn in _RECORD_REPLIES) or letter == _GS_SLIP:
                self._request("GS ( %s %d" % (chr(letter), fn))
            self._skip(rest)

    def _graphics(self):
        b = self._paren_base + 2           # a bx by c xL xH yL yH
        x = self._u16(b + 4)
        y = self._u16(b + 6)
        self._image_payload("graphics", x, y, self._paren_len - 10)

    def _store_code(self, cn):
        if self._data_overflow:
            self._stats["truncated_codes"] += 1
        skip = _CODE2D_PREFIX.get(cn, 1)
        # decoded once: every print of it shares the one str (8 bytes may print it again)
        self._stored[cn] = _code_text(memoryview(self._data)[skip:])
        self._done()

    def _print_code(self, cn):
        text = self._stored.get(cn)
        if text is not None and self._selected:
            self._end_image()
            self._stats["codes2d"] += 1
            self._begin_content()
            self._emit((CODE2D, _CODE2D.get(cn, "2D-%d" % cn), text))
        self._done()

    # ---- FS specials ------------------------------------------------------------------------

    def _fs_paren(self):
        letter = self._hdr[2]
        length = self._u16(3)
        if length >= 2 and letter in (_FS_ENCODING, _FS_LOGO, _FS_LABEL, _FS_EXT_ASB):
            self._want(7, self._fs_paren_fn)
        else:
            self._skip(length)

    def _fs_paren_fn(self):
        letter = self._hdr[2]
        fn = self._hdr[5]
        rest = self._u16(3) - 2
        if letter == _FS_ENCODING:
            if (fn == _FS_SELECT_ENCODING or fn == _FS_SELECT_ENCODING_BIN) and rest >= 0:
                self._utf8 = self._hdr[6] == 2 or self._hdr[6] == 50
                self._set_key()
        elif letter == _FS_EXT_ASB or (letter == _FS_LOGO and fn == _FS_LOGO_SEND) or \
                (letter == _FS_LABEL and (fn == _FS_LABEL_LAYOUT or fn == _FS_LABEL_POSITION)):
            self._request("FS ( %s %d" % (chr(letter), fn))
        self._skip(rest)

    def _fs_g(self):
        sub = self._hdr[2]
        if sub == _FS_NV_WRITE:
            self._want(10, lambda: self._skip(self._u16(8)))
        elif sub == _FS_NV_READ:
            self._want(10, lambda: self._dle_done("FS g 2"))
        else:
            self._fixed(3)

    def _fs_q(self):
        self._images_left = self._hdr[2]
        self._fs_q_next()

    def _fs_q_next(self):
        if not self._images_left:
            self._done()
            return
        self._images_left -= 1
        self._hlen = 3
        self._want(7, self._fs_q_image)

    def _fs_q_image(self):
        x = self._u16(3)
        y = self._u16(5)
        if x > 1023 or y > 288:
            self._desync()
            return
        self._skip(x * y * 8, self._fs_q_next)

    # ---- scans (NUL- or terminator-ended, capped) ---------------------------------------------

    def _scan_start(self, kind):
        self._scan_kind = kind
        self._data = bytearray()
        self._scan_fields = 0
        self._mode = _SCAN

    def _scan(self, buf, i, n):
        kind = self._scan_kind
        data = self._data
        while i < n:
            b = buf[i]
            if kind == _SCAN_BARCODE:
                m = self._symbology
                if b == 0 or len(data) >= _BARCODE_A_MAX[m]:
                    self._barcode(_BARCODE_A[m])
                    return i + 1 if b == 0 else i
                if b not in _BARCODE_A_ALPHABET[m]:
                    self._barcode(_BARCODE_A[m])
                    return i
                data.append(b)
            elif kind == _SCAN_TABS:
                if b == 0 or len(data) >= _MAX_TABS or (data and b <= data[-1]):
                    self._tabs = list(data)
                    self._done()
                    return i + 1 if b == 0 else i
                data.append(b)
            elif kind == _SCAN_UNTIL:
                if b == self._scan_end:
                    self._scan_then()
                    return i + 1
                if len(data) >= _MAX_SCAN:
                    self._desync()
                    return i
                data.append(b)
            else:
                if b == _COUNTER_FIELD_END:
                    self._scan_fields += 1
                    if self._scan_fields == 5:
                        self._done()
                        return i + 1
                elif not 0x30 <= b <= 0x39 or len(data) >= _MAX_SCAN:
                    self._done()
                    return i
                else:
                    data.append(b)
            i += 1
        return i

    def _scan_until(self, end, then):
        self._scan_start(_SCAN_UNTIL)
        self._scan_end = end
        self._scan_then = then

    # ---- Star Line Mode -----------------------------------------------------------------------

    def _star_esc(self, c):
        total = _STAR_ESC_FIX[c]
        if total:
            self._fixed(total)
        elif c == _GS:
            self._want(3, self._esc_gs)
        elif c == _RS:
            self._fixed(4)
        elif c == _STAR_BARCODE:
            self._want(6, lambda: self._scan_until(_RS, self._star_barcode))
        elif c == _STAR_VTAB_STOPS or c == _TAB_STOPS:
            self._scan_until(0, self._done_b)
        elif c == _STAR_PAGE_LENGTH:
            self._want(3, lambda: self._fixed(4 if self._hdr[2] == 0 else 3))
        elif c == _STAR_RASTER:
            self._want(4, self._star_esc_star)
        elif c == _STAR_IMAGE_24_WIDE:
            self._want(4, lambda: self._image_payload("column", self._u16(2), 24,
                                                     3 * self._u16(2)))
        elif c == _STAR_IMAGE_8 or c == _STAR_IMAGE_24:
            self._want(4, lambda: self._image_payload(
                "column", self._hdr[2], 8 if c == _STAR_IMAGE_8 else 24,
                self._hdr[2] * (1 if c == _STAR_IMAGE_8 else 3)))
        elif c == _STAR_IMAGE_8_WIDE:
            self._want(4, lambda: self._image_payload("column", self._u16(2), 8, self._u16(2)))
        else:
            self._unknown()

    def _star_exec(self, c):
        h = self._hdr
        if c == _INIT:
            self._init()
        elif c == _STAR_CUT:
            kind = _STAR_CUTS.get(h[2])
            if kind:
                self._do_cut(kind)
        elif c == _STAR_FEED_LINES:
            self._feed_lines(h[2] * _LINE_FEED_UNITS)
        elif c == _FEED_UNITS:               # n/4 mm
            self._feed_lines(h[2] * 16 // 9)
        elif c == _STAR_FEED_FINE:           # n/8 mm
            self._feed_lines(h[2] * 8 // 9)
        elif c == _INTL_CHARSET:
            self._intl = h[2]
            self._set_key()
        elif c == _STAR_DRAWER_PULSE:
            pass
        elif c == _STAR_STATUS and h[2] == _SOH:   # ESC ACK n: only SOH is answered
            self._request("ESC ACK SOH")
        elif c == _STAR_FORM_FEED and h[2] == _EOT:
            self._do_cut("full")

    def _star_barcode(self):
        n1 = self._hdr[2]
        kind = n1 - 0x30 if n1 >= 0x30 else n1
        name = _STAR_BARCODES[kind] if kind < len(_STAR_BARCODES) else "STAR-%d" % n1
        self._barcode(name)

    def _star_esc_star(self):
        # ESC * r A enters raster mode: we frame its commands as ESC * r x ... NUL and b/k lines
        if self._hdr[2] != _RASTER_R:
            self._unknown()
            return
        letter = self._hdr[3]
        if letter == _RASTER_ENTER or letter == _RASTER_QUIT:
            self._end_line()
            self._raster = letter == _RASTER_ENTER
            self._done()
        else:
            self._scan_until(0, self._done_b)

    def _raster_byte(self, b, i):
        """Star raster mode: b/k lines of raster data, ESC commands, nothing else prints."""
        if b == _RASTER_LINE_FEED or b == _RASTER_LINE:
            self._hdr[0] = b
            self._hlen = 1
            self._want(3, lambda: self._image_payload("star-raster", self._u16(1) * 8, 1,
                                                     self._u16(1)))
        elif b == _ESC:
            self._begin(b)
        return i + 1

    def _star_raster_image(self):
        x = self._u16(4)
        y = self._u16(6)
        self._image_payload("star-raster", x * 8, y, x * y)

    def _star_qr(self):
        sub = self._hdr[3]
        if sub == _STAR_CODE_DATA:
            self._want(8, lambda: self._collect(self._u16(6), self._max_code,
                                                lambda: self._star_store(_CODE2D_QR)))
        elif sub == _STAR_CODE_PRINT:
            self._print_code(_CODE2D_QR)
        elif sub == _STAR_CODE_INFO:
            self._dle_done("ESC GS y I")
        else:
            self._fixed(6)

    def _star_pdf417(self):
        sub = self._hdr[3]
        if sub == _STAR_CODE_DATA:
            self._want(6, lambda: self._collect(self._u16(4), self._max_code,
                                                lambda: self._star_store(_CODE2D_PDF417)))
        elif sub == _STAR_CODE_PRINT:
            self._print_code(_CODE2D_PDF417)
        elif sub == _STAR_CODE_INFO:
            self._dle_done("ESC GS x I")
        else:
            self._fixed(6)

    def _star_store(self, cn):
        self._stored[cn] = _code_text(self._data)
        self._done()

    # ---- text lines, images, receipts -----------------------------------------------------------

    def _emit(self, event):
        if self._recording and len(self._macro) < _MAX_MACRO:
            self._macro.append(event)
        self._out.append(event)

    def _drawer(self, event):
        self._stats["drawer_kicks"] += 1
        if self._cut_end is not None:
            self._cut_end[1] = self._cursor      # print, cut, open the drawer: all one receipt
        self._emit((DRAWER,) + event)

    def _request(self, name):
        self._stats["requests"] += 1
        self._out.append((REQUEST, name))

    def _newline(self):
        if self._llen == 0 and self._pending_img is not None:
            return                 # the LF after an image stripe is not a blank text line
        self._end_line(True)

    def _feed_lines(self, units):
        """Print the line in progress and feed units (1/180 inch; 0 for a back feed): a
        tear-off feed is noted (tear_lines) for the next thing printed to decide."""
        if self._llen:
            self._end_line()
        tear = self._tear
        if tear is not None and self._content:
            tear[_TEAR_FED] += units
            if tear[_TEAR_FED] >= tear[_TEAR_UNITS]:
                tear[_TEAR_AT] = self._cursor

    def _end_line(self, blank_too=False):
        llen = self._llen
        if llen == 0:
            if blank_too and self._selected:
                self._line_event("", None)
            return
        runs = self._runs
        self._llen = 0
        self._runs = []
        self._run_key = None
        self._line_cut = False
        if len(runs) == 1:
            # one run (most lines): decode_line's work without its call; the raw span is made
            # only when there is no codec
            key = runs[0][1]
            raw = bytes(self._line_mv[:llen])
            text = decode_text(raw, key[0], key[1])
            if text is None:
                spans = ((key[0], key[1], raw),)
            else:
                text = text.rstrip(" ")
        else:
            parts = []
            for k in range(len(runs)):
                start, key = runs[k]
                end = runs[k + 1][0] if k + 1 < len(runs) else llen
                if end > start:
                    parts.append((key[0], key[1], bytes(self._line_mv[start:end])))
            spans = tuple(parts)
            text = decode_line(spans)
        if text is None:
            self._line_event(None, spans)
        else:
            self._line_event(text, None)

    def _line_event(self, text, raw):
        if self._page_mode:
            if len(self._page) < _MAX_PAGE_LINES:
                self._page.append((text, raw))
            else:
                self._stats["page_lines_dropped"] += 1
            return
        self._stats["lines"] += 1
        event = (LINE, text, raw) if text or raw else _BLANK_LINE
        if event is not _BLANK_LINE:
            if self._pending_img is not None:
                self._end_image()
            if self._cut_end is not None or self._tear is not None or not self._content:
                self._begin_content(text or raw)
        if self._recording:
            self._emit(event)
        else:
            self._out.append(event)     # _emit(), inline: no macro being recorded

    def _print_page(self):
        self._end_line()
        page = self._page or []
        self._page_mode = False
        for text, raw in page:
            self._line_event(text, raw)
        self._page_mode = True
        self._page = []

    def _drop_page(self):
        self._end_line()
        if self._page:
            self._stats["page_lines_dropped"] += len(self._page)
        self._page = [] if self._page_mode else None

    def _image_payload(self, kind, width, height, size):
        if self._too_big(size):
            self._desync()
            return
        if self._keep_images:
            self._data = bytearray()
            self._data_cap = size
            self._data_overflow = False
        self._image_kind = (kind, width, height, size)
        self._skip(size, self._image_done)

    def _image_done(self):
        kind, width, height, size = self._image_kind
        self._image(kind, width, height, size, self._data)
        self._done()

    def _image(self, kind, width, height, size, payload=None):
        """An image printed; consecutive stripes of one picture become one IMAGE event."""
        self._stats["images"] += 1
        self._stats["image_bytes"] += size
        if not self._selected:
            return
        self._end_line()
        img = self._pending_img
        if img is not None and img[1] == kind and img[2] == width and kind != "logo":
            img[3] += height
            img[4] += size
            if payload is not None and img[5] is not None:
                img[5] += payload
            return
        self._end_image()
        self._pending_img = [IMAGE, kind, width, height, size,
                       bytes(payload) if payload is not None else None]

    def _end_image(self):
        img = self._pending_img
        if img is not None:
            self._pending_img = None
            self._begin_content((img[1], img[2]) if self._tear is not None else None)
            if img[5] is None:
                self._emit((IMAGE, img[1], img[2], img[3], img[4]))
            else:
                self._emit((IMAGE, img[1], img[2], img[3], img[4], img[5]))

    def _do_cut(self, kind):
        self._end_line()
        self._end_image()
        self._stats["cuts"] += 1
        self._out.append((CUT, kind))
        self._end_receipt("cut", kind)

    def _begin_content(self, what=None):
        """Something printed (what: a line's text or raw spans, an image's (kind, width), else
        None): a receipt ended by a cut before it ends now, before this; so does one that was
        fed to its tear-off and now prints its first line again (a second copy). A first line
        without a letter or digit (a rule of dashes) is no receipt's start: it never matches."""
        self._flush_cut()
        tear = self._tear
        if tear is not None:
            at = tear[_TEAR_AT]
            if at >= 0 and what is not None and what == tear[_TEAR_FIRST]:
                self._end_receipt("tear", None, at)
            tear[_TEAR_AT] = -1
            tear[_TEAR_FED] = 0
            if not self._content:
                tear[_TEAR_FIRST] = None if isinstance(what, str) and not _has_word(what) \
                    else what
        self._content = True

    def _flush_cut(self):
        end = self._cut_end
        if end is not None:
            self._cut_end = None
            self._out.append((RECEIPT_END, "cut", end[0], end[1]))

    def _end_receipt(self, reason, cut=None, offset=None):
        self._macro_left = _MACRO_RECEIPT_BUDGET
        self._end_line()
        self._end_image()
        self._flush_cut()
        tear = self._tear
        if tear is not None:
            tear[_TEAR_FED] = 0
            tear[_TEAR_AT] = -1
        if self._content:
            self._content = False
            self._stats["receipts"] += 1
            if reason == "tear":
                self._stats["tear_splits"] += 1
            if offset is None:
                offset = self._cursor if reason == "cut" or reason == "abort" else self._base
            if reason == "cut":
                self._cut_end = [cut, offset]    # until the next receipt begins
            else:
                self._out.append((RECEIPT_END, reason, cut, offset))

    def _replay_macro(self, times):
        """GS ^: the recorded events again, within what is left of the receipt's and the
        stream window's replay budgets; the events beyond are counted, not replayed."""
        window = self._cursor // _MACRO_WINDOW
        if window != self._macro_window:
            self._macro_window = window
            self._macro_chunk_left = _MACRO_CHUNK_BUDGET
        events = self._macro
        wanted = min(times, 16) * len(events)
        allowed = min(wanted, self._macro_left, self._macro_chunk_left)
        self._macro_left -= allowed
        self._macro_chunk_left -= allowed
        if allowed < wanted:
            self._stats["macro_events_dropped"] += wanted - allowed
        out = self._out
        size = len(events)
        for k in range(allowed):
            out.append(events[k % size])
