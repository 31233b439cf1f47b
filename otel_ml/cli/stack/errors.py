"""The one error of ``otel-ml stack``, in its own module so every other one can raise it."""

from __future__ import annotations


class StackError(RuntimeError):
    """The stack could not start or stop; the message says which program and why.

    The command prints it as one line (plus a log tail where one helps) and
    exits 1: it reports a situation the user can fix, never a bug.
    """
