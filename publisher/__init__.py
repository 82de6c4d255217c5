"""The release engine and its pytest plugin.

The engine is plain functions and classes, usable without pytest: `gitrepo` (the one way git is
run, the baseline and change set), `layout` (where version folders are, read from the working
tree or a commit), `state` (`.state/` files and the release lock), `hubclient` (the hub API, its
one retry loop and every bound on waiting), `printable` (outside text made safe to show),
`release` (the plan and one version's delivery), `hubchecks` (hub checks sent before their item
runs), `finalize` (what is recorded and whether the baseline advances), `outcome`, `stateschema`,
`shard`, `statesync`, `summary`, `options` (option resolution). The pytest layer maps pytest's
lifecycle onto it by process role: `plugin` (entry point), `controller`, `runner`, `reporter`,
`xdisthooks`, with `runspec` as what the controller hands to every runner and `items` as the
nodes; `precommit` is the `policyhub-check` pre-commit entry point.
See docs/architecture.md.
"""
