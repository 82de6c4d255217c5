"""The git-tracked state (docs/contract.md section 4): `folder.py` the `.state/` files (`baseline`,
`delivered.json`), their atomic writes and the release lock; `schema.py` their JSON Schemas
(`schemas/`, shipped as package data); `push.py` the commit and push of the state.

May import `publisher.repo`, `publisher.printable` and `policy_checks`; never pytest.
"""
