"""Coverage-guided fuzzing of the policy loaders and validators with atheris (optional: only
where `pip install atheris` works). The property is the hypothesis one of
tests/test_reliability_fuzz.py: any bytes end as a pass or findings naming the file, quickly.

    python -m tests.reliability.fuzz_atheris -runs=200000 -max_len=4096
"""

from __future__ import annotations

import sys
import time

import atheris

with atheris.instrument_imports():
    from policy_checks import PolicyChecker, PolicyFiles

FOLDER = "policies/fuzzed/v1.0.0"
PER_INPUT_SECONDS = 2.0
CHECKER = PolicyChecker.load()


def one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    split = provider.ConsumeIntInRange(0, len(data))
    metadata, definition = data[:split], data[split:]
    started = time.monotonic()
    result = CHECKER.check(PolicyFiles(folder=FOLDER, metadata=metadata, definition=definition))
    if time.monotonic() - started > PER_INPUT_SECONDS:
        raise AssertionError(f"one input took {time.monotonic() - started:.2f}s")
    if result.ok == bool(result.findings):
        raise AssertionError(f"ok={result.ok} with findings {result.findings}")
    for finding in result.findings:
        if not finding.file.startswith(FOLDER) or not finding.message.strip():
            raise AssertionError(f"finding without file or message: {finding}")


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
