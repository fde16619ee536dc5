"""What a user can get wrong on the command line ends in one line and an exit status, not a
traceback, and leaves nothing half done (a device registered whose credential was lost)."""
import os

from tilltap.cli import main


def _db(tmp_path):
    return "sqlite:///%s" % (tmp_path / "tilltap.db")


def test_a_missing_broker_folder_registers_no_device(tmp_path, capsys):
    db = _db(tmp_path)
    missing = str(tmp_path / "missing")
    assert main(["devices", "--db", db, "--mosquitto-dir", missing, "add", "till-1"]) == 2
    assert main(["devices", "--db", db, "mosquitto", missing]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["devices", "--db", db, "list"]) == 0
    assert capsys.readouterr().out == ""


def test_provisioning_into_a_folder_that_cannot_be_written_registers_nothing(tmp_path, capsys):
    db = _db(tmp_path)
    config = str(tmp_path / "no" / "such" / "config.json")
    assert main(["board", "provision", "--db", db, "--device", "till-2", "--config", config]) == 2
    assert "No such file or directory" in capsys.readouterr().err
    assert main(["devices", "--db", db, "list"]) == 0
    assert capsys.readouterr().out == ""
    assert not os.path.exists(config + ".tmp")


def test_a_crm_file_that_is_not_utf8_or_missing_is_refused_in_one_line(tmp_path, capsys):
    db = _db(tmp_path)
    csv = tmp_path / "customers.csv"
    csv.write_bytes(b"member_id,name\n1,Jos\xe9\n")            # an Excel cp1252 export
    assert main(["crm", "--db", db, "import", str(csv)]) == 2
    assert main(["crm", "--db", db, "import", str(tmp_path / "none.csv")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "not UTF-8" in err[0] and "No such file" in err[1]


def test_a_database_that_cannot_be_opened_is_one_line(tmp_path, capsys):
    bad = "sqlite:///%s" % (tmp_path / "no" / "dir" / "x.db")
    assert main(["devices", "--db", bad, "list"]) == 2
    assert main(["devices", "--db", "nosuchdialect://x", "list"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("the database cannot be" in line for line in err)


def test_the_database_password_is_never_shown(capsys):
    assert main(["devices", "--db", "postgresql://alice:S3cret@127.0.0.1:1/tt", "list"]) == 2
    err = capsys.readouterr().err
    assert "S3cret" not in err and "alice:***@" in err


def test_the_database_may_follow_the_action(tmp_path, capsys):
    db = _db(tmp_path)
    assert main(["devices", "add", "till-3", "--db", db]) == 0
    capsys.readouterr()
    assert main(["devices", "--db", db, "list"]) == 0
    assert '"till-3"' in capsys.readouterr().out
