"""A small authoritative DNS server for tests (dnslib), answering from a dict the test
changes while it runs: TXT and A records, NXDOMAIN for names it does not hold, and silence
(a timeout for the asker) while `silent` is set."""

import threading

from dnslib import QTYPE, RCODE, RR, TXT, A
from dnslib.dns import DNSError
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from .conftest import free_port


class Zone(BaseResolver):
    def __init__(self):
        self.records: dict[tuple[str, str], list[str]] = {}
        self.silent = False
        self.asked: list[str] = []

    def resolve(self, request, handler):
        question = request.q
        name = str(question.qname).rstrip(".").lower()
        kind = QTYPE[question.qtype]
        self.asked.append(f"{kind} {name}")
        if self.silent:
            raise DNSError("silent")  # dnslib sends nothing: the asker times out
        reply = request.reply()
        values = self.records.get((name, kind))
        for value in values or []:
            rdata = TXT(value) if kind == "TXT" else A(value)
            reply.add_answer(RR(question.qname, question.qtype, rdata=rdata, ttl=1))
        if not values and not any(held == name for held, _ in self.records):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class DnsServer:
    """`with DnsServer() as dns:` serves dns.zone at dns.address ("127.0.0.1:port")."""

    def __init__(self):
        self.zone = Zone()
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        self.server = DNSServer(self.zone, port=self.port, address="127.0.0.1", logger=quiet)

    def __enter__(self):
        # (dnslib's own start_thread polls for shutdown every 0.5 s: each test waited that long)
        threading.Thread(target=self.server.server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.stop()

    def txt(self, name: str, *values: str) -> None:
        self.zone.records[(name, "TXT")] = list(values)

    def a(self, name: str, *addresses: str) -> None:
        self.zone.records[(name, "A")] = list(addresses)

    def forget(self, name: str) -> None:
        for key in [k for k in self.zone.records if k[0] == name]:
            del self.zone.records[key]
