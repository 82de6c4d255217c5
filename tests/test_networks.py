"""Real networks (docs/contract.md sections 2 and 3): TLS end to end with a private CA (given by
flag in both spellings, ini or the standard variables), one clear line when the certificate is not
trusted, proxies honoured and bypassed by NO_PROXY, and every wait bounded: a hub that never
answers, a port where nothing listens, a hub that drips its answer, a hub that asks to wait an hour.
Limits are configured short here; their defaults are in the README and bench/dead_hub.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.connectproxy import ConnectProxy
from tests.hostilehub import HostileHub, Rule, SilentListener, free_port_url
from tests.hubprocess import HubProcess
from tests.policyrepo import PYPROJECT, PolicyRepo, RunResult, junit_properties

# The machine's own CA variables must not decide a test about CA bundles.
NO_CA_ENV = {"REQUESTS_CA_BUNDLE": "", "SSL_CERT_FILE": "", "CURL_CA_BUNDLE": ""}
SHORT_LIMITS = (
    "policy_hub_connect_timeout = 2\n"
    "policy_hub_answer_timeout = 2\n"
    "policy_hub_request_deadline = 5\n"
    "policy_hub_item_deadline = 10\n"
)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_hub(ca: trustme.CA, tmp_path: Path) -> Iterator[HubProcess]:
    folder = tmp_path / "tls"
    folder.mkdir()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
        str(folder / "server.pem")
    )
    pem = str(folder / "server.pem")
    with HubProcess(tmp_path / "hub", extra_args=("--tls-cert", pem, "--tls-key", pem)) as hub:
        assert hub.url.startswith("https://")
        yield hub


@pytest.fixture
def repo(repo: PolicyRepo) -> PolicyRepo:
    return repo.with_committed("alpha", "beta", "gamma")


def release(repo: PolicyRepo, hub: HubProcess, *args: str, **env: str) -> RunResult:
    return repo.release(hub, *args, env={**NO_CA_ENV, **env})


def ca_path(tmp_path: Path) -> str:
    return str(tmp_path / "tls" / "ca.pem")


@pytest.mark.parametrize(
    "how", ["flag=", "flag separate", "ini", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"]
)
def test_release_over_tls_with_a_private_ca(
    repo: PolicyRepo, tls_hub: HubProcess, tmp_path: Path, how: str
) -> None:
    ca_file = ca_path(tmp_path)  # outside the repository, as a CA bundle usually is
    args: tuple[str, ...] = ()
    env: dict[str, str] = {}
    if how == "flag=":
        args = (f"--hub-ca-bundle={ca_file}",)
    elif how == "flag separate":
        args = ("--hub-ca-bundle", ca_file)
    elif how == "ini":
        repo.write("pyproject.toml", PYPROJECT + f'policy_hub_ca_bundle = "{ca_file}"\n')
        repo.commit("trust the hub's CA")
    else:
        env = {how: ca_file}
    result = release(repo, tls_hub, "-n", "2", *args, **env)
    assert result.returncode == 0, result.output
    assert "Release successful – all 3 policies delivered" in result.stdout
    assert [tls_hub.created(n, "1.0.0") for n in ("alpha", "beta", "gamma")] == [1, 1, 1]


def test_an_untrusted_certificate_is_one_line_up_front_and_the_baseline_holds(
    repo: PolicyRepo, tls_hub: HubProcess
) -> None:
    result = release(repo, tls_hub, "-n", "2")
    assert result.returncode == 1, result.output
    errors = [line for line in result.stdout.splitlines() if line.startswith("policy-hub: ERROR")]
    assert len(errors) == 1, result.stdout
    assert f"the hub at {tls_hub.url} did not answer" in errors[0]
    assert "the hub's TLS certificate is not trusted" in errors[0]
    assert "after 1 try" in errors[0]
    assert "--hub-ca-bundle PATH" in errors[0]
    assert "Traceback" not in result.output and "urllib3" not in result.output
    assert repo.baseline is None and repo.delivered()["policies"] == {}
    assert tls_hub.records() == []


def test_an_untrusted_certificate_is_not_repeated_per_version(
    repo: PolicyRepo, tls_hub: HubProcess
) -> None:
    """Said once up front (and once in the summary, which is also the step summary); each item
    only says it was not attempted."""
    result = release(repo, tls_hub, "-n", "2", "--junitxml=report.xml")
    assert result.returncode == 1, result.output
    said = [line for line in result.stdout.splitlines() if "certificate is not trusted" in line]
    assert len(said) == 2, result.stdout
    assert said[0].startswith("policy-hub: ERROR") and "HUB UNREACHABLE" in said[1]
    reasons = {
        name: props["reason"] for name, props in junit_properties(repo.path / "report.xml").items()
    }
    assert len(reasons) == 3
    for reason in reasons.values():
        assert reason.startswith("not attempted: the hub at") and "certificate" not in reason


@pytest.mark.parametrize("bypass", [False, True], ids=["through-the-proxy", "NO_PROXY"])
def test_the_proxy_variables_are_honoured(
    repo: PolicyRepo, tls_hub: HubProcess, tmp_path: Path, bypass: bool
) -> None:
    with ConnectProxy() as proxy:
        env = {"HTTPS_PROXY": proxy.url, "NO_PROXY": "127.0.0.1" if bypass else ""}
        result = release(repo, tls_hub, f"--hub-ca-bundle={ca_path(tmp_path)}", **env)
    assert result.returncode == 0, result.output
    hub_address = tls_hub.url.removeprefix("https://")
    if bypass:
        assert proxy.tunnels == []
    else:
        assert proxy.tunnels and set(proxy.tunnels) == {hub_address}
    assert tls_hub.created("alpha", "1.0.0") == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot be read"), ("not a certificate\n", "holds no PEM certificate")],
)
def test_a_ca_bundle_that_cannot_be_used_is_exit_4(
    repo: PolicyRepo, tmp_path: Path, content: str | None, message: str
) -> None:
    bundle = tmp_path / "corp.pem"
    if content is not None:
        bundle.write_text(content)
    result = repo.pytest(
        "--release",
        "--hub-ca-bundle",
        str(bundle),
        env={"POLICY_HUB_URL": "https://127.0.0.1:9", **NO_CA_ENV},
    )
    assert result.returncode == 4, result.output
    assert f"the CA bundle {bundle} (from --hub-ca-bundle) {message}" in result.output


def dead_hub_release(repo: PolicyRepo, url: str) -> RunResult:
    for i in range(40):
        repo.add_policy(f"policy-{i:02d}", "1.0.0")
    repo.write("pyproject.toml", PYPROJECT + SHORT_LIMITS)
    repo.commit("forty versions, short limits")
    return repo.pytest(
        "--release",
        "-n",
        "4",
        env={"POLICY_HUB_URL": url, "POLICY_HUB_TOKEN": "t"},
        timeout=120,
    )


def assert_dead_hub_run(repo: PolicyRepo, result: RunResult, url: str) -> None:
    assert result.returncode == 1, result.output
    errors = [line for line in result.stdout.splitlines() if line.startswith("policy-hub: ERROR")]
    assert len(errors) == 1 and f"the hub at {url} did not answer" in errors[0], result.stdout
    assert "Release failed – no policies delivered" in result.stdout
    assert result.stdout.count("HUB UNREACHABLE") == 1
    assert result.stdout.count("not-attempted") >= 43  # 43 versions in the table
    assert repo.delivered()["policies"] == {} and repo.baseline is None


def test_a_hub_that_accepts_and_never_answers_ends_the_run(repo: PolicyRepo) -> None:
    with SilentListener() as silent:
        result = dead_hub_release(repo, silent.url)
        assert_dead_hub_run(repo, result, silent.url)
    assert "no complete answer within 2 s" in result.stdout


def test_a_port_where_nothing_listens_ends_the_run(repo: PolicyRepo) -> None:
    url = free_port_url()
    result = dead_hub_release(repo, url)
    assert_dead_hub_run(repo, result, url)
    assert "Connection refused) after " in result.stdout


def test_a_dripping_answer_ends_at_its_deadline(repo: PolicyRepo) -> None:
    repo.write("pyproject.toml", PYPROJECT + SHORT_LIMITS + "policy_hub_attempts = 2\n")
    repo.commit("short limits")
    drip = Rule("GET", "^/policies/", 200, {"padding": "x" * 400}, drip_seconds=0.05)
    with HostileHub([drip]) as hostile:
        result = repo.pytest(
            "--release",
            "-k",
            "alpha",
            env={"POLICY_HUB_URL": hostile.url, "POLICY_HUB_TOKEN": "t"},
            timeout=60,
        )
    assert result.returncode == 1, result.output
    assert "no answer (no complete answer within 2 s) after 2 tries" in result.stdout
    assert [m for m, _ in hostile.requests].count("GET") == 2, hostile.requests


@pytest.mark.parametrize(
    "value",
    ["\u00b2", "9" * 5000, "soon", "-1", "1.5", ""],
    ids=["superscript-two", "5000-digits", "a-word", "negative", "a-fraction", "empty"],
)
def test_a_retry_after_that_cannot_be_read_is_a_plain_retry(value: str) -> None:
    """`²` is a digit to str.isdigit() (and a latin-1 byte a header may carry), not to float();
    5000 digits are more than int() reads: each is no Retry-After, and the try is repeated."""
    from publisher.hub.client import HubClient, RetryPolicy

    wait = Rule("GET", "^/policies/", 429, {"detail": "slow down"}, (("Retry-After", value),))
    wait.times = 1
    gone = Rule("GET", "^/policies/", 404, {"error": "not-found", "detail": "no such version"})
    with HostileHub([wait, gone]) as hostile:
        client = HubClient(hostile.url, "t", RetryPolicy(attempts=2, backoff=0.01))
        answer = client.get_policy("alpha", "1.0.0")
    assert (answer.status, answer.attempts) == (404, 2)


def test_retry_after_an_hour_is_capped_and_each_version_created_once(
    repo: PolicyRepo, hub: HubProcess
) -> None:
    repo.write("pyproject.toml", PYPROJECT + "policy_hub_retry_after_cap = 1\n")
    repo.commit("short cap")
    wait = Rule("POST", "^/policies$", 429, {"detail": "slow down"}, (("Retry-After", "3600"),))
    wait.times = 3  # once per version
    with HostileHub([wait], upstream=hub.url) as hostile:
        result = repo.pytest(
            "--release",
            env={"POLICY_HUB_URL": hostile.url, "POLICY_HUB_TOKEN": hub.token},
            timeout=120,
        )
    assert result.returncode == 0, result.output
    assert [hub.created(n, "1.0.0") for n in ("alpha", "beta", "gamma")] == [1, 1, 1]
