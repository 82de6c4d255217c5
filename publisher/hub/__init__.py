"""The Policy Hub seen from the harness (docs/contract.md section 5): `client.py` is the one way a
request is sent (the token in its `Authorization` header, one retry loop, every bound on waiting)
and the one check of what a hub answers (`hub_record`).

May import `publisher.printable` and `policy_checks`; never pytest, never another `publisher`
package.
"""
