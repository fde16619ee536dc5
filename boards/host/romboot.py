"""Host board boot with the firmware in ROM, as a board whose MicroPython has a romfs
partition boots (its _boot.py mounts the partition at /rom, first on sys.path).

    micropython -X heapsize=N romboot.py IMAGE [--board ...] [--config ...] [--status ...]

A board maps the partition from flash. The unix port has no flash: the image is read into
the heap before anything else and stays where it is (the collector never moves objects),
standing in for the mapped partition; tilltap.unixport.rom_heapsize sizes the heap for it.
"""
import gc
import sys

import vfs


def boot(image_path):
    """Mounts the image at /rom and puts it first on the module path."""
    with open(image_path, "rb") as f:
        image = f.read()
    vfs.mount(vfs.VfsRom(image), "/rom")
    sys.path.insert(0, "/rom")
    gc.collect()


boot(sys.argv[1])
from tilltap_fw.main import main  # noqa: E402 -- from the image mounted just above

main(["main"] + sys.argv[2:])
