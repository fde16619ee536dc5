"""The shared ESC/POS corpus for tests: tilltap_host.corpus, and a skip where it is absent."""
import pytest

from tilltap_host.corpus import CORPUS, corpus_files, options_for, short  # noqa: F401


def need_corpus():
    if not corpus_files():
        pytest.skip("ESC/POS corpus not found at %s (set TILLTAP_CORPUS)" % CORPUS)
