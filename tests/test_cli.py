"""The offline commands as a person runs them."""

import pytest

from pipeline.errors import ParameterError
from service.cli import main


def test_pipeline_then_assign(small_data, small_shape, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["pipeline", "--data", str(small_data), "--out", str(out), "--no-plots"]) == 0
    captured = capsys.readouterr()
    for stage in ("read", "clean", "cluster", "users", "write"):
        assert f"{stage} ..." in captured.err
    table = dict(line.split(None, 1) for line in captured.out.splitlines() if "  " in line)
    assert table["users"].strip() == f"{small_shape.users:,}"
    assert table["movies"].strip() == f"{small_shape.movies:,}"
    assert main(["assign", "--genres", "Animation|Children|Comedy", "--out", str(out)]) == 0
    assert 0 <= int(capsys.readouterr().out) < 10


def test_assign_without_a_model_is_one_clear_line(tmp_path, capsys):
    assert main(["assign", "--genres", "Drama", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("movierec: error: ") and "movierec pipeline" in err
    assert "Traceback" not in err


def test_bad_k_range_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["pipeline", "--choose-k", "ten"])
    assert exit_.value.code == 2
    assert "expected a range like 6-14" in capsys.readouterr().err


def test_only_project_errors_become_one_line(monkeypatch, capsys):
    def refused(args):
        raise ParameterError("unknown thing 'x'; choose from a, b")

    def broken(args):
        raise KeyError("a bug")

    monkeypatch.setattr("service.serving_commands.cmd_status", refused)
    assert main(["status"]) == 1
    assert capsys.readouterr().err == "movierec: error: unknown thing 'x'; choose from a, b\n"
    monkeypatch.setattr("service.serving_commands.cmd_status", broken)
    with pytest.raises(KeyError, match="a bug"):  # a bug keeps its traceback
        main(["status"])
