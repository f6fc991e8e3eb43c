"""Serving processes start without the offline pipeline's heavy libraries."""

import subprocess
import sys

HEAVY = ("pandas", "sklearn", "matplotlib", "pyarrow", "pipeline.run")

PROBE = """
import sys
from service.cli import build_parser
args = build_parser(offline=False).parse_args(["web"])
from web import create_app
create_app()
print(",".join(m for m in {heavy!r} if m in sys.modules))
"""


def test_the_web_command_path_imports_no_heavy_library():
    # a fresh interpreter: this test process has imported everything already
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == ""


def test_offline_commands_still_parse_through_the_full_parser():
    from service.cli import SERVING_COMMANDS, build_parser

    parser = build_parser()
    assert parser.parse_args(["pipeline", "--k", "4"]).k == 4
    for command in SERVING_COMMANDS:
        assert parser.parse_args([command]).command == command
