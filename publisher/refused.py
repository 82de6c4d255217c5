"""`Refused`: a run that cannot start as asked (a bad flag or ini value, a corrupt state file, no
git history, a hub URL that may not be used). It carries one line for a person; the plugin turns it
into pytest's usage error (exit 4, the message alone) in one place, `publisher/plugin/__init__.py`.
Every `publisher` package may raise it; nothing else is imported here.
"""

from __future__ import annotations


class Refused(Exception):
    """The message says what is wrong and how to fix it; it never holds a secret."""
