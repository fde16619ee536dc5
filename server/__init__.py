"""TillTap server and host tools (imported as `tilltap`).

The firmware modules are top-level modules on the board (`import escpos_parser`); the host
puts firmware/ on sys.path so the server reuses exactly the same code.
"""
import os
import sys

FIRMWARE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "firmware")
if FIRMWARE_DIR not in sys.path:
    sys.path.append(FIRMWARE_DIR)
