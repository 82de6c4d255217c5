"""The checks of one policy version after its files are loaded, one module a check: `shape`
(the files against their JSON Schemas), `conditions` (each rule's CEL condition compiled and
type-checked), `cases` (tests.yaml run through the evaluator). `policy_checks/checker.py`
(`PolicyChecker`) calls them in order.
"""
