"""The policy repository: `git.py` is the one way git is run (the release commit, the baseline,
the change set); `layout.py` is the `policies/<name>/v<version>/` layout both ways (a folder from a
name and version, and back), read from the working tree or from a commit.

May import `publisher.printable` and `policy_checks`; never pytest, never another `publisher`
package.
"""
