"""The Policy Hub seen from the harness (docs/contract.md section 5): `client.py` is the one way a
request is sent (the token in its `Authorization` header, one retry loop, every bound on waiting)
and the one check of what a hub answers (`hub_record`). `token.py` reads `POLICY_HUB_TOKEN`;
without it, in GitHub Actions, `oidc.py` gets a hub token by trusted publishing (section 9).

May import `publisher.printable` and `policy_checks`; never pytest, never another `publisher`
package.
"""
