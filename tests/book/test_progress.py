"""What a user sees while notebooks run: `t2fsnn run` in a terminal (bars) and without one (one line per notebook)."""
import json
import os
import re
import select
import subprocess
import sys
import time

import pytest

from t2fsnn.book import progress

NB = "01_train_and_convert"


def _cli(*args):
    return [sys.executable, "-m", "t2fsnn.book.cli", *args]


def _env(cache):
    env = dict(os.environ)
    env["T2FSNN_CACHE"] = str(cache)  # a fresh cache: the notebook trains, so a training bar must show
    env["T2FSNN_PROGRESS_DELAY"] = "0"  # smoke training takes about a second: show its bar at once
    env.pop("T2FSNN_PROGRESS", None)
    return env


def run_in_terminal(argv, env, timeout=400, columns=120):
    """Run ``argv`` with a pseudo-terminal as stdin, stdout and stderr; return (exit code, raw output)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
                            start_new_session=True)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    ended = None
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer of the terminal has closed it
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                if ended is None:
                    ended = time.monotonic()
                elif time.monotonic() - ended > 5:  # the CLI has ended and nothing more came
                    break
        else:
            proc.kill()
            pytest.fail("the run did not finish in time:\n" + b"".join(chunks).decode(errors="replace")[-3000:])
    finally:
        os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def notebook_streams(path):
    nb = json.loads(path.read_text())
    texts = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                texts.append("".join(output["text"]))
    return "\n".join(texts)


@pytest.mark.slow
def test_terminal_shows_notebook_and_training_bar(tmp_path):
    out = tmp_path / "out"
    code, text = run_in_terminal(_cli("run", NB, "--profile", "smoke", "--output-dir", str(out)), _env(tmp_path / "cache"))
    assert code == 0, text
    assert f"[1/1] {NB} (profile smoke) running" in text
    # the training loop's tqdm bar reached the terminal, with images per second
    assert re.search(r"epoch 1/1:\s+\d+%\|.*img/s", text), text
    assert "\r" in text  # the bar redraws in place
    assert re.search(rf"\[1/1\] {NB}: done in [\d.]+ s, wrote ", text), text
    assert re.search(r"finished in [\d.]+ s; 1 executed notebook in ", text), text
    assert "without encryption" not in text
    # the executed notebook stays clean: no bar, no widget warning
    streams = notebook_streams(out / f"{NB}.ipynb")
    assert "epoch 1/1" not in streams and "it/s" not in streams and "img/s" not in streams
    assert "IProgress" not in streams and "TqdmWarning" not in streams


@pytest.mark.slow
def test_without_terminal_one_line_per_notebook(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(_cli("run", NB, "--profile", "smoke", "--output-dir", str(out)), env=_env(tmp_path / "cache"),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=400)
    text = proc.stdout.decode()
    assert proc.returncode == 0, text
    assert "\r" not in text and "\x1b[" not in text  # no redraws, no cursor movement
    assert "without encryption" not in text
    lines = text.splitlines()
    assert [line for line in lines if line.startswith("[1/1]")] == [
        line for line in lines if re.fullmatch(rf"\[1/1\] {NB}: done in [\d.]+ s, wrote .*{NB}\.ipynb", line)]
    assert len([line for line in lines if line.startswith("[1/1]")]) == 1, text
    assert re.fullmatch(r"finished in [\d.]+ s; 1 executed notebook in .+", lines[-1]), text
    assert "epoch" not in notebook_streams(out / f"{NB}.ipynb")


def test_display_lines_mode(tmp_path):
    class Stream:
        def __init__(self):
            self.text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

        def isatty(self):
            return True  # asked for "lines": no bars even on a terminal

    stream = Stream()
    display = progress.Display.for_terminal(quiet=True, stream=stream)
    assert display.mode == "lines" and display.kernel_target() == "off"
    display.notebook_started(1, 2, "a", "smoke")  # silent in lines mode
    display.notebook_finished(1, 2, "a", 3.25, tmp_path / "a.ipynb")
    display.notebook_failed(2, 2, "b", 125.0)
    line = display.summary([tmp_path / "a.ipynb"], tmp_path / "index.html", seconds=3725)
    assert stream.text.splitlines() == [
        f"[1/2] a: done in 3.2 s, wrote {tmp_path / 'a.ipynb'}",
        "[2/2] b: FAILED after 2 min 05 s",
        line,
    ]
    assert line.startswith("finished in 1 h 02 min; 1 executed notebook in ") and line.endswith("index.html")


def test_kernel_environment_is_restored(monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    display = progress.Display("off")
    with display.kernel_environment():
        assert os.environ[progress.ENV] == "off"
    assert progress.ENV not in os.environ
