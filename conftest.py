"""This repository's own pytest customisation, and nothing else.

The harness itself is the `policyhub` plugin (`publisher/plugin/__init__.py`, registered through the
`pytest11` entry point), so any policy repository gets it by `pip install`. Here we only add what
the project's own test suite (`pytest tests`) needs: pytester for black-box plugin tests.
"""

pytest_plugins = ["pytester"]
