"""Printer models (escpos-printer-db, generated into model_tables.py): which code page each
ESC t number selects on a model, whether it cuts, whether it takes Star commands.

Imported only when a printer model is configured: the tables stay off the heap otherwise.
Everything is looked up in the tables' strings: no per-model or per-page objects.
"""
from . import model_tables
from .escpos_parser import spec_page

UNKNOWN_PAGE = "?"     # the model has the page; escpos-printer-db does not say which it is


def find(model):
    """(code-page table, cuts, star) for a model name as escpos-printer-db spells it
    ("TM-T88V", "POS-5890"), or None when there is no such model."""
    if not model or " " in model or ":" in model:
        return None
    models = model_tables.MODELS
    at = models.find(" %s:" % model)
    if at < 0:
        return None
    at += len(model) + 2
    colon = models.find(":", at)
    flags = models[colon + 1:models.find(" ", colon)]
    return model_tables.TABLES[int(models[at:colon])], "c" in flags, "s" in flags


def page(table, n):
    """The encoding a model's table (find()) gives code page n: a name, UNKNOWN_PAGE, or None
    when the model has no page n."""
    return spec_page(table, n)


def cuts(model):
    """Whether a model cuts paper (True also for a name that is no model: assume a cutter)."""
    found = find(model)
    return found is None or found[1]


def names():
    """Every model name, sorted (command-line choices and messages)."""
    return sorted(entry.split(":")[0] for entry in model_tables.MODELS.split())
