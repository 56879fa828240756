"""The development stack's logs, and the files its processes write, are readable by their owner only."""

from __future__ import annotations

import stat
import sys

from collabry.devstack.components import Process


def test_logs_and_files_of_children_are_private(tmp_path):
    made = tmp_path / "data" / "upload.bin"
    made.parent.mkdir()
    script = f"import pathlib; pathlib.Path({str(made)!r}).write_bytes(b'x'); print('hello')"
    proc = Process("child", [sys.executable, "-c", script], tmp_path / "logs" / "child.log", lambda: True)
    proc.start()
    assert proc.proc is not None and proc.proc.wait(30) == 0
    assert "hello" in proc.log_path.read_text()
    assert stat.S_IMODE(proc.log_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
