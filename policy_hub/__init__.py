"""The reference Policy Hub: CONTRACT.md section 5 as a FastAPI app over SQLite.

`policy-hub serve` (cli.py) runs it as a process; embedded.py runs it in a thread for
`--hub-url local`. Nothing here imports the harness, and only the local hub imports this.
"""
