"""The release engine and its pytest plugin, one package per role (docs/architecture.md):

- `plugin/`: the only package that imports pytest: the hooks, by process role (controller,
  worker), options, items, reporter, the xdist hand-over, the `policyhub-check` command;
- `release/`: the flow without pytest: a run chosen once (`run.py`), the plan, one version's
  delivery, the author-mode guard, the hub checks sent ahead, shards, the end of a release
  (`baseline.py`: what is recorded and whether the baseline advances), the summary texts;
- `hub/`: the hub client (the one retry loop, every bound on waiting), the token, the embedded hub;
- `repo/`: git and the `policies/` layout; `state/`: the `.state/` files, their schemas, the push;
- `printable.py` (outside text made safe to show) and `refused.py` (the one refusal, exit 4).

Arrows point down only (plugin → release → state/repo/hub → printable/refused → policy_checks),
as `tests/test_layers.py` checks.
"""
