#!/usr/bin/env python3
"""Synthetic company zones for the peer benchmark (bench/peers.py).

Each company domain `cN.bench` is its own zone, as in real life, with what a mail admin
publishes: two MX hosts in the zone (with addresses), SPF including a provider's policy
(itself with nested includes), DMARC with a report address, a 2048-bit DKIM key split in
two strings, MTA-STS and TLS-RPT. One provider zone (`mailprovider.bench`) holds the
shared SPF includes. Every zone is served by one nameserver, `ns1.mailprovider.bench`.

Usage: bench/zones.py COUNT DIRECTORY   (writes DIRECTORY/zones/*.zone and knot.conf)
"""

import os
import sys

# A 2048-bit RSA public key (SubjectPublicKeyInfo, base64): a TXT string holds 255 octets
# at most, so the record carries it in two strings, as real DKIM records do.
DKIM_KEY = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAyFQjM/UdIJH0OL42tn+514xqlKZKORYbcKfyBw1AgJyLll"
    "jmmEd3uZsxBXZqli9UytZj7Yz4Ev3DUaRXQSvsDzX3m5x+JXgvrzccv21b/e6aA//Vv3vgcEqur6dD4gEFtXwSL6"
    "iSbjSI4fbAnZCTSaYmy4e2uUSflcpdEAS8kiijOBiQ9wEldCJ2nOxeOKRxHu2UOR15Zu+siPFB0QjlIDiLi9BtrJu"
    "xPIP6oiRAqvcVj35ay6mWyAkdv5+nWsl5zqnWW+ukveCwYyJOgwSK3/0afwt6CUv/4kteKnVyTS6LXm7gDlLZaHIo"
    "KQQlsXOpNPhtfBqPVNQY4d9iq9fjTQIDAQAB"
)

PROVIDER = """$ORIGIN mailprovider.bench.
$TTL 3600
@        SOA ns1 hostmaster 1 3600 600 86400 300
@        NS  ns1
ns1      A   127.0.0.1
_spf     TXT "v=spf1 include:_spf1.mailprovider.bench include:_spf2.mailprovider.bench -all"
_spf1    TXT "v=spf1 ip4:198.51.100.0/24 ip4:203.0.113.0/25 -all"
_spf2    TXT "v=spf1 ip4:192.0.2.128/25 ip6:2001:db8:100::/48 -all"
"""


def domain(i: int) -> str:
    """The i-th company domain."""
    return f"c{i}.bench"


def company_zone(i: int) -> str:
    """The zone of company i: its own MX hosts, SPF, DMARC, DKIM, MTA-STS, TLS-RPT."""
    name = domain(i)
    a, b = 1 + i % 250, 1 + (i // 250) % 250
    first, second = DKIM_KEY[:230], DKIM_KEY[230:]
    return f"""$ORIGIN {name}.
$TTL 300
@           SOA ns1.mailprovider.bench. hostmaster 1 3600 600 86400 300
@           NS  ns1.mailprovider.bench.
@           MX  10 mx1
@           MX  20 mx2
mx1         A   10.{b}.{a}.1
mx1         AAAA 2001:db8:{b:x}:{a:x}::1
mx2         A   10.{b}.{a}.2
@           TXT "v=spf1 mx include:_spf.mailprovider.bench -all"
_dmarc      TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{name}"
default._domainkey TXT "v=DKIM1; k=rsa; p={first}" "{second}"
_mta-sts    TXT "v=STSv1; id=20261201T000000"
mta-sts     A   10.{b}.{a}.3
_smtp._tls  TXT "v=TLSRPTv1; rua=mailto:tls@{name}"
"""


KNOT_CONF = """server:
    listen: 127.0.0.1@53
    udp-workers: 2
    tcp-workers: 1
    background-workers: 1
    rundir: {dir}/run

database:
    storage: {dir}/db

log:
  - target: stderr
    any: error

mod-stats:
  - id: counters
    request-protocol: on
    query-type: on

template:
  - id: default
    storage: {dir}/zones
    file: "%s.zone"
    global-module: mod-stats/counters
    semantic-checks: off
    journal-content: none
    zonefile-load: whole

zone:
{zones}"""


def write(count: int, directory: str) -> None:
    """Writes the zones and the Knot configuration for `count` companies."""
    zones = os.path.join(directory, "zones")
    os.makedirs(zones, exist_ok=True)
    os.makedirs(os.path.join(directory, "run"), exist_ok=True)
    os.makedirs(os.path.join(directory, "db"), exist_ok=True)
    with open(os.path.join(zones, "mailprovider.bench.zone"), "w") as f:
        f.write(PROVIDER)
    names = ["mailprovider.bench"]
    for i in range(count):
        with open(os.path.join(zones, f"{domain(i)}.zone"), "w") as f:
            f.write(company_zone(i))
        names.append(domain(i))
    listed = "".join(f"  - domain: {n}\n" for n in names)
    with open(os.path.join(directory, "knot.conf"), "w") as f:
        f.write(KNOT_CONF.format(dir=directory, zones=listed))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    write(int(sys.argv[1]), os.path.abspath(sys.argv[2]))
