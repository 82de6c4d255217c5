"""`python -m policy_hub`: the same entry point as the `policy-hub` script."""

from __future__ import annotations

from policy_hub.cli import main

raise SystemExit(main())
