"""Without the vitals extra, importing pulseloop.vitals says what to install."""

from __future__ import annotations

import subprocess
import sys


def test_missing_extra_names_the_install_command() -> None:
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "try:\n"
        "    import pulseloop.vitals\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'pulseloop[vitals]'" in out.stdout
    assert "numpy" in out.stdout
