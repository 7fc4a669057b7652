"""`onramp demo` stops everything it started, anvil included, when it is told to stop
with SIGTERM (as a process manager or a closing terminal does), as it does on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.processes import ONRAMP, bare_env


def descendants(pid: int) -> set[int]:
    """Every living process below `pid`, from /proc."""
    children: dict[int, set[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # "pid (comm) state ppid …"; comm may hold spaces and parentheses.
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        children.setdefault(int(fields[1]), set()).add(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), set()):
            found.add(child)
            todo.append(child)
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_sigterm_stops_everything_the_demo_started(tmp_path: Path) -> None:
    errors = tmp_path / "demo.err"
    with errors.open("w") as stderr:
        demo = subprocess.Popen(
            [ONRAMP, "demo", "--keep-open"],
            env=bare_env(),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # its own group: whatever is left, the test can end
        )
    try:
        held = "everything stays up"
        wait_for(lambda: held in errors.read_text() or demo.poll() is not None, 90, "readiness")
        assert demo.poll() is None, errors.read_text()
        started = descendants(demo.pid)
        assert started, "anvil runs as a child of the demo"
        demo.send_signal(signal.SIGTERM)
        # Held open, the demo ends as it does on Ctrl-C: exit 0.
        assert demo.wait(timeout=30) == 0, errors.read_text()
        wait_for(lambda: not any(running(pid) for pid in started), 10, "children still running")
    finally:  # whatever is left of its process group, on a failure
        with contextlib.suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGKILL)
        demo.wait()
    assert "Traceback" not in errors.read_text()
