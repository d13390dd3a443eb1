"""``python -m cosmos_env``: a user error prints one line and exits 2, a bug keeps its
traceback, and --debug / HYDRA_FULL_ERROR=1 show the traceback of user errors too."""

import subprocess
import sys

import pytest

import cosmos_env.__main__ as entry
from cosmos_env.__main__ import cli


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["generate", "episodes=0"], "need episodes >= 1"),
        (["compare", "no_such_key=1"], "no_such_key"),
        (["compare", "amp=fast"], "amp must be 'auto', True or False"),
        (["demo", "checkpoint=/no/such/model"], "no checkpoint at"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(argv, says, capsys):
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and err.count("\n") == 1
    assert "Traceback" not in err


def test_debug_and_hydra_full_error_show_the_traceback(monkeypatch):
    with pytest.raises(ValueError, match="need episodes >= 1"):
        cli(["--debug", "generate", "episodes=0"])
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ValueError, match="need episodes >= 1"):
        cli(["generate", "episodes=0"])


def test_a_bug_keeps_its_traceback(monkeypatch):
    def broken(argv):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(entry, "main", broken)
    with pytest.raises(ZeroDivisionError):
        cli(["generate"])


def test_the_module_entry_point_exits_2_with_one_line():
    run = subprocess.run(
        [sys.executable, "-m", "cosmos_env", "generate", "episodes=0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and run.stderr.strip().startswith("error: need episodes >= 1")
    assert "Traceback" not in run.stderr
