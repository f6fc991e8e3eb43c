"""Serving processes start without the offline pipeline's heavy libraries."""

import os
import subprocess
import sys

HEAVY = ("pandas", "sklearn", "matplotlib", "pyarrow", "pipeline.run")
STORAGE_CLIENTS = ("obstore", "boto3", "botocore", "s3fs")

PROBE = """
from service.cli import build_parser
args = build_parser(offline=False).parse_args(["web"])
from web import create_app
create_app()
"""


def loaded(probe: str, modules: tuple[str, ...], env: dict[str, str] | None = None) -> str:
    """Which of `modules` a fresh interpreter has imported after running `probe` (this test
    process has imported everything already); the report is the last line printed."""
    report = f"\nimport sys\nprint(','.join(m for m in {modules!r} if m in sys.modules))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe + report], capture_output=True, text=True, check=True, env=env
    )
    return out.stdout.splitlines()[-1]


def test_the_web_command_path_imports_no_heavy_library():
    assert loaded(PROBE, (*HEAVY, *STORAGE_CLIENTS)) == ""


def test_the_web_tier_starts_without_the_s3_client_even_on_a_bucket():
    """The client loads on the first store call (a new movie, /health), not at start-up."""
    env = os.environ | {"MOVIEREC_MODELS": "s3://movierec/models"}
    assert loaded(PROBE, STORAGE_CLIENTS, env) == ""


def test_the_offline_parser_imports_no_heavy_library():
    """`movierec pipeline` loads its libraries when its stages run, not when it parses."""
    probe = "from service.cli import build_parser\nbuild_parser().parse_args(['pipeline'])"
    assert loaded(probe, (*HEAVY, "numpy", "redis")) == ""


def test_the_pipeline_command_loads_only_what_its_stages_need(small_data, tmp_path):
    """matplotlib is loaded by the plot process alone; the evaluation, the synthesizer and the
    servers' clients not at all."""
    probe = (
        "from service.cli import main\n"
        f"assert main(['pipeline', '--data', {str(small_data)!r}, '--out', {str(tmp_path)!r}]) == 0"
    )
    unneeded = (
        "matplotlib",
        "pipeline.evaluation.runs",
        "pipeline.data.synth",
        "redis",
        "tqdm",
    )
    assert loaded(probe, unneeded) == ""
    for name in ("cluster_sizes", "cluster_pca", "genre_share"):
        assert (tmp_path / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_offline_commands_still_parse_through_the_full_parser():
    from service.cli import SERVING_COMMANDS, build_parser

    parser = build_parser()
    assert parser.parse_args(["pipeline", "--k", "4"]).k == 4
    for command in SERVING_COMMANDS:
        assert parser.parse_args([command]).command == command
