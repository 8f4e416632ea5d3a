"""The host grammar (workers/addresses.py): what the control plane builds, it parses back,
and what is not one of its hosts is refused rather than misread."""

from workers.addresses import Address, deployment_host, parse, worker_host


def test_hosts_split_back_into_their_parts():
    assert parse(worker_host("hello", "acme")) == Address("hello", "acme")
    assert parse(deployment_host("hello", "ab12cd", "acme")) == Address("hello", "acme", "ab12cd")


def test_what_is_not_a_host_of_ours_is_refused():
    for host in ["hello", "a--b--c--d", "--acme", "hello--", "hello----acme", ""]:
        assert parse(host) is None, host
