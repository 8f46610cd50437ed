#!/usr/bin/env python
"""Django's command-line entry point for the bundled forge site."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forge.settings")
    # A wrong setting or an unreachable database ends the command with one line.
    from forge.startup import run_command

    run_command(sys.argv)


if __name__ == "__main__":
    main()
