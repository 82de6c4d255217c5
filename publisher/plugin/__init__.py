"""The pytest plugin (the `pytest11` entry point `policyhub`): the only package that imports
pytest. It maps pytest's lifecycle onto the release engine (`publisher.release`) by process role:

- an xdist worker gets a `RunSpec` in `workerinput` and registers only an `ItemRunner`
  (`worker.py`: what runs on a worker, and on the only process without xdist);
- the controller (or the only process) registers the `Controller` (`controller.py`), which
  decides the run as a `RunSpec` and ends it, an `ItemRunner` built from that same spec, the
  `Reporter` (`reporter.py`), and, only when xdist is present, the `XdistHooks` that hand the
  spec to the workers (`xdisthooks.py`), and only when pytest-html is, the `HtmlColumns` that
  add each version's outcome and reason to its table (`htmlreport.py`).

`options.py` resolves flags, environment and ini keys; `items.py` holds the collected nodes;
`precommit.py` is the `policyhub-check` command. May import every other `publisher` package and
`policy_checks`. Inert in a directory without `policies/`.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from policy_checks import POLICIES_DIR
from publisher.hub.client import RetryPolicy, TokenSource
from publisher.hub.oidc import OidcExchange
from publisher.hub.token import resolve_token
from publisher.plugin.controller import CONTROLLER_PLUGIN, Controller
from publisher.plugin.htmlreport import HTML_COLUMNS_PLUGIN, HTML_PLUGIN, HtmlColumns
from publisher.plugin.items import PolicyItem
from publisher.plugin.options import add_options, repair_rootdir, resolve_options
from publisher.plugin.reporter import REPORTER_PLUGIN, Reporter
from publisher.plugin.worker import RUNNER_PLUGIN, ItemRunner
from publisher.refused import Refused
from publisher.release.run import Run, build_run
from publisher.release.runspec import WORKERINPUT_KEY, RunSpec


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    repair_rootdir(early_config, args)
    # What a run froze (pytest_collection_finish below) is given back at the very end, after
    # pytest's own last collections, which then skip it; so an in-process run (pytester) leaves
    # nothing frozen behind.
    early_config.add_cleanup(gc.unfreeze)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: no more workers than versions, and none for a handful (xdisthooks)."""
    from xdist.plugin import (  # type: ignore[import-untyped]  # xdist ships no py.typed
        pytest_xdist_auto_num_workers as cpu_count,
    )

    from publisher.plugin.xdisthooks import auto_workers

    return auto_workers(config, cpu_count(config))


@contextmanager
def refusals() -> Iterator[None]:
    """The one place a `Refused` run becomes pytest's usage error: exit 4, the message alone."""
    try:
        yield
    except Refused as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    with refusals():
        _configure(config)


def _configure(config: pytest.Config) -> None:
    manager = config.pluginmanager
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        data = workerinput.get(WORKERINPUT_KEY)
        if data is not None:
            spec = RunSpec.from_workerinput(data)
            manager.register(ItemRunner(config.rootpath, spec, worker_token(spec)), RUNNER_PLUGIN)
        return
    root = config.rootpath
    if not (root / POLICIES_DIR).is_dir():
        if config.option.release or config.option.changed_since:
            raise Refused(f"no {POLICIES_DIR}/ folder in {root}: nothing to validate or release")
        return
    run = make_run(config)
    try:
        spec = run.prepare()
    except BaseException:
        run.close()
        raise
    manager.register(Controller(run), CONTROLLER_PLUGIN)
    manager.register(ItemRunner(root, spec, run.token, run.checker), RUNNER_PLUGIN)
    manager.register(Reporter(run, annotate=run.annotates), REPORTER_PLUGIN)
    if manager.hasplugin("xdist"):
        from publisher.plugin.xdisthooks import XdistHooks

        manager.register(XdistHooks(spec))
    if manager.hasplugin(HTML_PLUGIN):
        manager.register(HtmlColumns(), HTML_COLUMNS_PLUGIN)


def worker_token(spec: RunSpec) -> str | TokenSource | None:
    """A worker's hub token: the embedded hub's, POLICY_HUB_TOKEN, or its own trusted publishing
    exchange (made at its first request) when the controller made one; never sent to it."""
    if spec.local_token:
        return spec.local_token
    if not spec.release:
        return None
    token = resolve_token(os.environ)
    if token is None and spec.oidc_audience and spec.hub_url:
        policy = RetryPolicy().with_limits(spec.limits)
        return OidcExchange(spec.hub_url, spec.oidc_audience, os.environ, policy, spec.ca_bundle)
    return token


def make_run(config: pytest.Config) -> Run:
    """The run this command line asks for (`publisher.release.run.build_run`)."""

    def write_line(line: str) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)

    return build_run(
        resolve_options(config, config.rootpath),
        config.rootpath,
        write_line,
        collect_only=bool(config.option.collectonly),
        selects_every_version=_selects_every_version(config),
    )


def _selects_every_version(config: pytest.Config) -> bool:
    """Whether this run's items are all the versions to deliver (no `-k`, `-m`, `--lf`,
    `--sw`, `--deselect`, `--ignore` or paths that pick a subset), so hub checks sent for
    all of them are all used."""
    option = config.option
    narrowed = (
        option.keyword
        or option.markexpr
        or getattr(option, "lf", False)
        or getattr(option, "stepwise", False)
        or getattr(option, "deselect", None)
        or getattr(option, "ignore", None)
        or getattr(option, "ignore_glob", None)
    )
    given_paths = config.args_source == pytest.Config.ArgsSource.ARGS
    return not narrowed and not given_paths


def pytest_collection_finish(session: pytest.Session) -> None:
    # A session of policy items only: those items (and all that is loaded by now) live until the
    # end, so out of the cyclic garbage collector's sight its full passes over a growing heap
    # stop costing ~10 % of a run of 10 000 versions. A session with other tests is left alone.
    if session.items and all(isinstance(item, PolicyItem) for item in session.items):
        gc.freeze()
