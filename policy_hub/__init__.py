"""The reference Policy Hub: CONTRACT.md sections 5 and 6 as a FastAPI app over a `Store`
(store.py): a SQLite file (sqlite_store.py, the embedded default) or a PostgreSQL database that
any number of processes share (postgres_store.py).

`policy-hub serve` (cli.py) runs it as a process; embedded.py runs it in a thread for
`--hub-url local`. Nothing here imports the harness, and only the local hub imports this.
"""
