"""What `make run` serves with: gunicorn and the webhook worker, started and stopped together.

Both are children of this process. Ctrl-C (SIGINT to the terminal's process group) or a
SIGTERM to this process stops both; when either ends on its own, the other is stopped
and this process exits with the first one's status (gunicorn's 2 for a misconfiguration,
say), so `make run` fails as it did when it ran gunicorn alone.

    python scripts/run_site.py PYTHON GUNICORN
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

# How long a child has to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 30


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(python: str, gunicorn: str) -> int:
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)

    # Installed before the children start, so a Ctrl-C at any moment is handled here.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    children = [
        subprocess.Popen([gunicorn, "-c", "gunicorn.conf.py", "forge.wsgi:application"]),
        subprocess.Popen([python, "manage.py", "deliver_events"]),
    ]
    status = 0
    while not stopping:
        ended = [child for child in children if child.poll() is not None]
        if ended:
            status = ended[0].returncode
            break
        time.sleep(0.2)
    stop(children)
    return 0 if stopping else status


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
