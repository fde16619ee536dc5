"""firmware/runner.py Runner on CPython with an injected out-of-memory: what did not fit at boot
is built again in a quiet moment, a configuration problem is not retried."""
import json

from unixport import run_micropython

from tilltap_fw import main
from tilltap_fw import runner as runner_module
from tilltap_fw.compat import ticks_ms
from tilltap_fw.config import validate
from tilltap_host.unixport import HOST_BOARD


def _runner(tmp_path, server_host=""):
    board = main.load_board(HOST_BOARD)
    cfg = validate({"mode": "network", "printer": {"host": "127.0.0.1", "port": 9},
                    "spool": {"dir": str(tmp_path / "spool")},
                    "server": {"host": server_host}})
    return runner_module.Runner(board, cfg)


def test_capture_that_did_not_fit_at_boot_is_built_later(tmp_path, monkeypatch):
    real, calls = runner_module.Capture, []

    def starved(*args, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("simulated")
        return real(*args, **kw)

    monkeypatch.setattr(runner_module, "Capture", starved)
    runner = _runner(tmp_path)
    runner.build()
    assert runner.capture is None and runner._build_at is not None
    assert "capture disabled: MemoryError" in runner.problems[0]
    boot = runner.boot
    runner._build_at = ticks_ms() - 1          # its time has come
    runner.tick(None, False)
    assert runner.capture is not None and runner._build_at is None
    assert runner.boot == boot                       # the same boot, counted once
    assert runner.uplink is None and runner._build_at is None   # no server.host: not retried
    assert any(p.startswith("uplink disabled: ValueError") for p in runner.problems)


def test_due_survives_a_ticks_wrap():
    assert runner_module._due(None, 5, 1000)
    assert not runner_module._due(1500, 1000, 1000) and runner_module._due(1000, 1000, 1000)
    # further off than it can be: a wrap passed
    assert runner_module._due(10 ** 6, 10, 1000)


def test_the_runners_spool_sets_refused_records_aside_and_offers_them_again(tmp_path):
    runner = _runner(tmp_path)
    runner.build()
    spool = runner.spool                      # the locked spool capture and uplink share
    seqs = [spool.append(b'{"v":1}') for _ in range(3)]
    assert spool.set_aside(seqs[1:2]) == 1
    assert [s for s, _ in spool.pending(10)] == [seqs[0], seqs[2]]
    assert spool.stats()["refused"] == 1 and spool.stats()["count"] == 2
    assert spool.retry_refused() == 1 and spool.stats()["refused"] == 0


def test_boot_config_gives_the_checked_file_and_drops_the_schema_on_micropython(tmp_path):
    """main.boot_config on the unix port: the same settings as config.load (rebuilt in one
    piece once the schema module is dropped), the schema module gone from sys.modules, and a
    refused file gives the defaults and why."""
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"mode": "network", "printer": {"host": "10.0.0.9"},
                                "server": {"host": "tilltap.example", "port": 1883}}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"printer": {"baudrate": 7}}))
    script = (
        "import json, sys\n"
        "from tilltap_fw.main import boot_config\n"
        "cfg, problem = boot_config(%r)\n"
        "dropped = 'tilltap_fw.config' not in sys.modules\n"
        "from tilltap_fw import config\n"
        "print(json.dumps([cfg == config.load(%r), problem, dropped]))\n"
        "cfg, problem = boot_config(%r)\n"
        "from tilltap_fw import config\n"
        "print(json.dumps([cfg == config.defaults(), problem]))\n"
    ) % (str(good), str(good), str(bad))
    result = run_micropython(["-c", script])
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.split("\n")[:2])
    assert first == [True, None, True]
    assert second[0] is True and second[1].startswith("config: printer.baudrate")
