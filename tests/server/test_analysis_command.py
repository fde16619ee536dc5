"""`tilltap crm import`, `reextract` and `operators add` through their argument parsers (SQLite
and PostgreSQL)."""
import analysis_data as data

from tilltap import cli
from tilltap.accounts import operators
from tilltap.storage import database


def _run(command, where, argv):
    return cli.main([command, *where, *argv])


def test_commands(db_target, tmp_path, monkeypatch, capsys):
    where = ["--db", db_target.url] + (["--schema", db_target.schema] if db_target.schema else [])
    engine = database.make_engine(db_target.url, schema=db_target.schema)
    data.load(engine)
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text("member_id,name\n123,Kim\n,\n")
    assert _run("crm", where, ["import", str(csv_file)]) == 0
    out = capsys.readouterr()
    assert "1 customers imported, 1 rows refused" in out.out and "customers.csv:3:" in out.err
    assert _run("reextract", where, []) == 0
    assert "7 receipts extracted" in capsys.readouterr().out
    monkeypatch.setenv("TILLTAP_OPERATOR_PASSWORD", "long enough pw")
    assert _run("operators", where, ["add", "kim"]) == 0
    assert operators.verify(engine, "kim", "long enough pw")
    assert _run("operators", where, ["add", "kim"]) == 1
    engine.dispose()


def test_template_test_shows_what_a_template_extracts(db_target, tmp_path, capsys):
    import json
    where = ["--db", db_target.url] + (["--schema", db_target.schema] if db_target.schema else [])
    engine = database.make_engine(db_target.url, schema=db_target.schema)
    data.load(engine)
    template = tmp_path / "corner.json"
    template.write_text(json.dumps({"fields": {"receipt_no": {"pattern": r"Receipt No: (\d+)"}}}))
    argv = ["test", data.CORNER, "3", str(template)]
    assert _run("template", where, argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["template"]["receipt_no"] == "1005" and out["fields"]["total"] == "3.00"
    template.write_text(json.dumps({"fields": {"totl": {"line": 1}}}))
    assert _run("template", where, argv) == 2
    assert "template.fields.totl: unknown field" in capsys.readouterr().err
    assert _run("template", where, ["test", data.CORNER, "99", str(template)]) == 2
    engine.dispose()
