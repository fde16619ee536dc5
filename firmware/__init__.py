"""TillTap's firmware, one package on the board and on the server (`tilltap_fw`).

On the board the modules are compiled into /lib/tilltap_fw/ (or a ROMFS image) and /main.py
starts tilltap_fw.main. The server imports the pure modules it shares with the board:
escpos_parser (framing, text), receipt and record (receipt assembly), protocol and
protocol_check (the wire format), cardmask, fields (field rules) and config (the schema).
Modules import each other relatively, so the package works under any name and path.
"""

FIRMWARE_VERSION = "0.1.0"
