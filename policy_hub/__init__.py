"""The reference Policy Hub: the contract's sections 5 and 6 (docs/contract.md) as a FastAPI app
over a `Store` (store.py, with the decisions both engines share; answers.py builds every answer
body): a SQLite file (sqlite_store.py, the embedded default) or a PostgreSQL database that any
number of processes share (postgres_store.py); engines.py opens the one `--db` names.
Trusted publishing (section 9): publishers.py reads `--publishers`, oidc.py checks a JWT and
mints a token for `POST /auth/oidc`.

`policy-hub serve` (cli.py) runs it as a process; embedded.py runs it in a thread for
`--hub-url local`. It imports policy_checks (the version and name patterns, canonical JSON and
the digest: one definition of each) and nothing of publisher; only the local hub imports this.
"""
