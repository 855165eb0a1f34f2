"""TensorFlow's native start-up lines are kept off the CLI's stderr; everything else passes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from textlstm.native_logs import is_native_noise

DROPPED = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"I0000 00:00:1796381016.499410   13406 port.cc:153] oneDNN custom operations are on.",
    b"I0000 00:00:1796381016.499781   13406 cudart_stub.cc:31] Could not find cuda drivers on your machine",
    b"I1204 09:32:22.280168 13509 cpu_feature_guard.cc:227] This TensorFlow binary is optimized",
    b"To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow",
    b"E0000 00:00:1796381033.338362   13521 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
]
KEPT = [
    b"error: data.csv is not valid utf-8; expected text in that encoding",
    b"textlstm: epoch 1/2: accuracy=0.85",
    b"E0000 00:00:1796381033.338362   13521 some_op.cc:52] a real kernel error",
    b"W0000 00:00:1796381033.338362   13521 allocator.cc:10] Allocation exceeds 10% of free system memory.",
    b"Epoch 1/5",
    b"Info for you",
]


@pytest.mark.parametrize("line", DROPPED)
def test_native_logs_start_up_lines_are_noise(line: bytes) -> None:
    assert is_native_noise(line)


@pytest.mark.parametrize("line", KEPT)
def test_native_logs_other_lines_are_kept(line: bytes) -> None:
    assert not is_native_noise(line)


def test_native_logs_cli_stderr_keeps_logs_progress_and_errors_in_order(tmp_path) -> None:
    # A child that writes the start-up lines from native code's point of view (fd 2), a
    # progress bar without a newline, and Python's own lines, through the CLI's filter.
    script = tmp_path / "child.py"
    script.write_text(
        "import os, sys\n"
        "from textlstm.native_logs import native_log_filter\n"
        "with native_log_filter():\n"
        f"    os.write(2, {DROPPED[0]!r} + b'\\n' + {DROPPED[1]!r} + b'\\n')\n"
        "    print('textlstm: first', file=sys.stderr, flush=True)\n"
        "    os.write(2, b'\\r 1/3 [===   ]')\n"
        "    os.write(2, b'\\r 3/3 [======]\\n')\n"
        f"    os.write(2, {DROPPED[5]!r} + b'\\n')\n"
        "    print('error: last', file=sys.stderr)\n"
        "print('after', file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"textlstm: first\n\r 1/3 [===   ]\r 3/3 [======]\nerror: last\nafter\n"
