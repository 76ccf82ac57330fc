"""The ``pulseloop`` command line: see ``pulseloop.cli.main`` and ``docs/cli.md``."""
