"""The ``es`` command: run the embedded stack and operate it."""
