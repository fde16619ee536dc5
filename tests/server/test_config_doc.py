"""The README's settings table is `tilltap config-doc`, made from config.SCHEMA."""
import os

from tilltap.cli.config_doc import markdown_table
from tilltap_host.unixport import ROOT


def test_the_readme_holds_the_generated_settings_table():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    start = readme.index("<!-- config-doc -->\n") + len("<!-- config-doc -->\n")
    end = readme.index("\n<!-- /config-doc -->")
    assert readme[start:end] == markdown_table(), "run `tilltap config-doc` into the README"

