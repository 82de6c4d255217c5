"""The part of the plugin that exists only under pytest-xdist, registered only when xdist is
present (as pytest-randomly does): the hand-over of the `RunSpec` to every worker."""

from __future__ import annotations

from typing import Any

import pytest

from publisher.runspec import WORKERINPUT_KEY, RunSpec


class XdistHooks:
    def __init__(self, spec: RunSpec) -> None:
        self._payload = spec.to_workerinput()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        # Every worker collects the same items in the same order without running git itself.
        node.workerinput[WORKERINPUT_KEY] = self._payload
