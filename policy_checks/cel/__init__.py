"""CEL as Kubernetes has it (docs/contract.md section 8): the environment a condition is
checked and run in.

- `environment`: the descriptor pool, the checking and the running environments, compiling.
- `library/`: the functions Kubernetes adds to cel-spec's, one module a library, each with its
  declarations as data at the top and its implementations below.
- `types`: the type words of a declaration (`list(A)`, `net.IP`) for both sides of the engine.
- `checkedast`: the checked expression read back, to check constant arguments at their column.

Knows CEL and nothing of policies: `policy_checks.checks.conditions` puts conditions through it.
"""
