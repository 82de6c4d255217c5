"""Running `action.yml` as GitHub runs it, for tests: its `run:` steps whose `if:` holds, each
with its `env:` evaluated from the inputs and the `github` context (the few expression forms the
action uses), under bash as a runner starts it. `uses:` steps are the runner's business."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """`a.b`, `x || y`, `x == 'lit'`, `!cancelled()`, and the literals true and false."""
    expression = expression.strip()
    if expression == "!cancelled()":
        return True
    if expression in ("true", "false"):
        return expression == "true"
    if "||" in expression:
        value: Any = ""
        for part in expression.split("||"):
            value = evaluate(part, context)
            if value:
                return value
        return value
    if "==" in expression:
        left, right = (side.strip() for side in expression.split("=="))
        return evaluate(left, context) == right.strip("'")
    value = context
    for key in expression.split("."):
        value = value.get(key, "") if isinstance(value, dict) else ""
    return value


def substitute(text: str, context: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        result = evaluate(match.group(1), context)
        return str(result).lower() if isinstance(result, bool) else str(result)

    return EXPRESSION.sub(value, text)


def run_steps(
    action_dir: Path,
    cwd: Path,
    inputs: dict[str, str],
    github: dict[str, Any],
    base_env: dict[str, str],
) -> subprocess.CompletedProcess[str]:
    """Every `run:` step of `action_dir/action.yml` that applies, in order; stops at a failure."""
    action = yaml.safe_load((action_dir / "action.yml").read_text())
    defaults = {k: str(v.get("default", "")) for k, v in action["inputs"].items()}
    context = {"inputs": {**defaults, **inputs}, "github": github}
    env = {**base_env, "GITHUB_ACTION_PATH": str(action_dir)}
    last = subprocess.CompletedProcess[str]([], 0, "", "")
    for step in action["runs"]["steps"]:
        if "run" not in step:
            continue
        condition = step.get("if")
        if condition and not evaluate(EXPRESSION.sub(r"\1", condition), context):
            continue
        step_env = {k: substitute(str(v), context) for k, v in step.get("env", {}).items()}
        last = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=cwd,
            env={**env, **step_env},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if last.returncode != 0:
            return last
    return last
