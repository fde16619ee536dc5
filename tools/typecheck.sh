#!/usr/bin/env bash
# mypy over the server (tilltap) and the host tools (tilltap_host), with the firmware package
# (tilltap_fw) they import. mypy does not follow setuptools' editable-install finders, so it
# gets the packages by their import names from a directory of links, made here.
set -euo pipefail
cd "$(dirname "$0")/.."
names=.venv/typecheck
mkdir -p "$names"
ln -sfn ../../server "$names/tilltap"
ln -sfn ../../firmware "$names/tilltap_fw"
ln -sfn ../../tools/tilltap_host "$names/tilltap_host"
MYPYPATH="$names" exec .venv/bin/mypy -p tilltap -p tilltap_host
