"""The garbage collector's passes a short command skips, and the exit status kept through them."""

import gc
import subprocess
import sys

import pytest

from pipeline.plots.side_process import _load_plotting
from pipeline.process.collector import collector_paused
from service import cli


@pytest.fixture
def collector_enabled():
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    if not was_enabled:
        gc.disable()


def test_the_collector_is_paused_inside_and_enabled_after(collector_enabled):
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_failure_inside_still_enables_it(collector_enabled):
    with pytest.raises(ImportError), collector_paused():
        import movierec_no_such_module  # noqa: F401
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled(collector_enabled):
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_the_console_entry_exits_with_the_commands_status(tmp_path):
    """`run` freezes what is alive and exits: with 0 for a command that worked, 1 for a
    command's error, as `main` returns them."""
    command = [sys.executable, "-m", "service.cli"]
    assert subprocess.run([*command, "--help"], capture_output=True).returncode == 0
    failed = subprocess.run(
        [*command, "assign", "--genres", "Drama", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1
    assert "no saved model" in failed.stderr


@pytest.fixture
def unfrozen():
    """Each test starts with nothing frozen and gives back what it froze to the collector."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_console_entry_freezes_what_is_alive_before_it_exits(unfrozen, monkeypatch):
    monkeypatch.setattr(cli, "main", lambda: 3)
    with pytest.raises(SystemExit) as exited:
        cli.run()
    assert exited.value.code == 3
    assert gc.get_freeze_count() > 0


def test_the_plot_process_freezes_what_its_imports_made(unfrozen):
    _load_plotting()
    assert gc.get_freeze_count() > 0
