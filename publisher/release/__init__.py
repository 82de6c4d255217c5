"""The release flow without pytest (docs/contract.md section 3): what a run will deliver and how it
ends.

`plan.py` the baseline, the change set and the early filter (`make_plan`), and one version's
delivery (`deliver_version`: hub check, validation, publish); `outcome.py` the outcome words;
`hubchecks.py` the hub checks sent before their item runs; `baseline.py` what is recorded and
whether the baseline advances; `shard.py` shards and their fragments; `summary.py` the texts of
the summary and the preview; `runspec.py` what every process of a run is handed.

May import `publisher.hub`, `publisher.repo`, `publisher.state`, `publisher.printable` and
`policy_checks`; never pytest.
"""
