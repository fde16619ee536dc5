"""TillTap's host tools (`tilltap_host`): what runs on a PC beside the server but is no part of
a server deployment. `tilltap demo` (the whole system on this PC), `tilltap board` (flash,
deploy, REPL), `tilltap tap` (the firmware as a network tap on this PC), and the parts they and
the tests are made of: the firmware on the MicroPython unix port (unixport, firmware_process),
a virtual printer, a simulated POS, a private Mosquitto broker and `tilltap serve` in a
subprocess. Installed by `make setup` beside the server; a server needs none of it."""
from tilltap_fw import FIRMWARE_VERSION as VERSION  # noqa: F401 -- one version for the project
