"""`publisher.printable`: the one function through which outside text reaches a person."""

from __future__ import annotations

import pytest

from publisher import printable as module
from publisher.printable import printable, register_secret

pytestmark = pytest.mark.fast


@pytest.fixture(autouse=True)
def _no_secrets_between_tests() -> None:
    module._secrets.clear()


def test_control_characters_are_escaped_and_no_line_can_start_a_workflow_command() -> None:
    text = printable("ok\n::error::pwned\r\x1b[31mred\u2028x\x00")
    assert "\n" not in text and "\r" not in text and "\x1b" not in text and "\x00" not in text
    assert text == "ok\\x0a::error::pwned\\x0d\\x1b[31mred\\u2028x\\x00"
    assert printable("::add-mask::x") == "\\::add-mask::x"
    assert printable("  ::warning::x").startswith("\\::")


def test_text_is_capped() -> None:
    assert printable("x" * 1000, 50) == "x" * 49 + "…"


def test_a_registered_secret_is_redacted_before_the_cap_can_cut_it() -> None:
    secret = "s3cr3t-" + "A" * 30
    register_secret(secret)
    assert printable(f"echo: Bearer {secret} end") == "echo: Bearer *** end"
    assert secret[:12] not in printable("x" * 290 + secret, 300)


def test_a_short_secret_is_redacted_only_where_it_stands_alone() -> None:
    register_secret("t")
    assert printable("ConnectionError: Bearer t") == "ConnectionError: Bearer ***"
