"""Start ``rasa`` with its API token taken from the environment, never from the command line.

A process's command line is readable by every local user (``ps``, ``/proc/<pid>/cmdline``); its
environment only by its own user. This script runs under Rasa's own interpreter (``.venv-rasa``,
Python 3.10), so it imports nothing of the gateway: it reads ``RASA_TOKEN``, adds it to the
arguments Rasa parses in-process (the exec'd command line stays without it), and hands over.

    RASA_TOKEN=… .venv-rasa/bin/python nlu/rasa_launch.py run --enable-api --model … --port …
"""

from __future__ import annotations

import os
import sys

TOKEN_VARIABLE = "RASA_TOKEN"


def main() -> None:
    token = os.environ.pop(TOKEN_VARIABLE, "")
    if not token:
        sys.exit(f"{TOKEN_VARIABLE} is not set: the Rasa API would be open to anyone on this host")
    sys.argv = ["rasa", *sys.argv[1:], f"--auth-token={token}"]  # one argument: a token may start with "-"
    from rasa.__main__ import main as rasa_main  # Rasa's interpreter only

    rasa_main()


if __name__ == "__main__":
    main()
