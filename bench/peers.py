#!/usr/bin/env python3
"""maildrift beside its peers, on the same zones and the same two cores.

Serves synthetic company zones (bench/zones.py) with Knot DNS on 127.0.0.1 inside a private
network namespace (nothing leaves the machine, port 53 is ours), measures the server's
ceiling with dnsperf, then runs on the same zones, each several times:

- `maildrift check --format json` (the one-shot analysis, every check),
- `maildrift run` until ready (its first round over every domain), and `/metrics`,
- blackbox_exporter (Debian) probing each domain's MX and TXT, as Prometheus would,
- checkdmarc (PyPI, in a virtualenv) on a 1,000-domain subset.

Queries are counted at the server (Knot's mod-stats), memory with the kernel's peak RSS,
CPU from /proc. Writes the medians to bench/RESULTS.md. Every run is bounded in time and
every process is stopped by PID.

Usage (root, for the namespace): python3 bench/peers.py [--sizes 1000,10000,100000]
    [--runs 3] [--peer-size 10000] [--maildrift target/release/maildrift]
    [--checkdmarc PATH] [--out bench/RESULTS.md]
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import zones  # noqa: E402

KNOT_STARTUP = 600  # seconds: 100,000 zones take a while to load
STEP_LIMIT = 1800  # seconds: no single measurement runs longer


def run(cmd, **kwargs):
    """Runs a command to completion, bounded in time."""
    return subprocess.run(cmd, check=True, timeout=STEP_LIMIT, **kwargs)


class Knot:
    """knotd serving the zones, with its query counters."""

    def __init__(self, directory):
        self.conf = os.path.join(directory, "knot.conf")
        self.proc = subprocess.Popen(
            ["knotd", "-c", self.conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.time() + KNOT_STARTUP
        while time.time() < deadline:
            probe = subprocess.run(
                ["kdig", "+short", "+norec", "+time=1", "@127.0.0.1", "c0.bench", "SOA"],
                capture_output=True,
                text=True,
            )
            if probe.stdout.strip() and self.zones_loaded():
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError("knotd did not serve the zones in time")

    def zones_loaded(self):
        status = subprocess.run(
            ["knotc", "-c", self.conf, "zone-status"], capture_output=True, text=True
        )
        lines = [line for line in status.stdout.splitlines() if line.startswith("[")]
        return lines and all("serial: 1" in line for line in lines)

    def queries(self):
        """Queries answered so far (every protocol)."""
        out = subprocess.run(
            ["knotc", "-c", self.conf, "stats", "mod-stats.request-protocol"],
            capture_output=True,
            text=True,
        ).stdout
        return sum(int(n) for n in re.findall(r"= (\d+)", out))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def cpu_seconds(pid):
    """User plus system CPU of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def peak_rss_mib(pid):
    """The kernel's peak resident set size of a live process, in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def timed(cmd):
    """Runs `cmd` under /usr/bin/time -v: (wall s, cpu s, peak RSS MiB)."""
    started = time.monotonic()
    result = subprocess.run(
        ["/usr/bin/time", "-v", *cmd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=STEP_LIMIT,
    )
    wall = time.monotonic() - started
    err = result.stderr
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", err).group(1))
    system = float(re.search(r"System time \(seconds\): ([\d.]+)", err).group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1)) / 1024
    return wall, user + system, rss, result.returncode


def maildrift_config(path, count, interval="1h"):
    """A config watching the first `count` companies at the local server."""
    with open(path, "w") as f:
        f.write(
            "defaults:\n"
            f"  interval: {interval}\n"
            "  timeout: 60s\n"
            "  concurrency: 256\n"
            '  resolvers: ["127.0.0.1"]\n'
            '  nameservers: ["127.0.0.1"]\n'
            "  mta_sts: { timeout: 2s }\n"
            # No port 25 and no RDAP registry inside the namespace: those two checks
            # would only measure how fast a connection is refused.
            "  smtp: { enabled: false }\n"
            "  checks: { skip: [registration] }\n"
            "domains:\n"
        )
        for i in range(count):
            f.write(f"  - name: {zones.domain(i)}\n")
            f.write("    expect: { dkim: { selectors: [default] } }\n")


def measure_check(binary, knot, config, count):
    before = knot.queries()
    wall, cpu, rss, code = timed([binary, "check", "--config", config, "--format", "json"])
    queries = knot.queries() - before
    return {
        "domains_per_s": count / wall,
        "wall_s": wall,
        "cpu_ms_per_domain": 1000 * cpu / count,
        "queries_per_domain": queries / count,
        "queries_per_s": queries / wall,
        "peak_rss_mib": rss,
        "exit": code,
    }


def http_get(url, timeout=120):
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read()
        status = response.status
    return status, body, time.monotonic() - started


def measure_daemon(binary, knot, config, count, port):
    state = tempfile.mkdtemp(prefix="maildrift-bench-state-")
    before = knot.queries()
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            binary,
            "run",
            "--config",
            config,
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--state-dir",
            state,
            "--log.level",
            "warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = started + STEP_LIMIT
        ready = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, _, _ = http_get(f"http://127.0.0.1:{port}/-/ready", timeout=5)
                if status == 200:
                    ready = time.monotonic() - started
                    break
            except OSError:
                pass
            time.sleep(0.05)
        if ready is None:
            raise RuntimeError("maildrift never became ready")
        queries = knot.queries() - before
        cpu = cpu_seconds(proc.pid)
        scrapes = []
        size = 0
        for _ in range(3):
            _, body, took = http_get(f"http://127.0.0.1:{port}/metrics")
            scrapes.append(took)
            size = len(body)
        series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
        return {
            "domains_per_s": count / ready,
            "ready_s": ready,
            "cpu_ms_per_domain": 1000 * cpu / count,
            "queries_per_domain": queries / count,
            "peak_rss_mib": peak_rss_mib(proc.pid),
            "metrics_ms": 1000 * statistics.median(scrapes),
            "metrics_mib": size / 2**20,
            "series": series,
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(state, ignore_errors=True)


def measure_blackbox(knot, count, port, workdir):
    """blackbox_exporter probing MX and TXT of each domain, 64 probes at a time."""
    config = os.path.join(workdir, "blackbox.yml")
    with open(config, "w") as f:
        f.write("modules:\n")
        for i in range(count):
            for kind in ("MX", "TXT"):
                f.write(
                    f"  {kind.lower()}_{i}:\n    prober: dns\n    timeout: 5s\n"
                    f"    dns: {{ query_name: {zones.domain(i)}, query_type: {kind}, "
                    "transport_protocol: udp, preferred_ip_protocol: ip4 }\n"
                )
    proc = subprocess.Popen(
        [
            "prometheus-blackbox-exporter",
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            try:
                http_get(f"http://127.0.0.1:{port}/-/healthy", timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        cpu_before = cpu_seconds(proc.pid)
        before = knot.queries()
        probes = [(kind, i) for i in range(count) for kind in ("mx", "txt")]
        lock = threading.Lock()
        failures = []

        def worker():
            while True:
                with lock:
                    if not probes:
                        return
                    kind, i = probes.pop()
                url = f"http://127.0.0.1:{port}/probe?module={kind}_{i}&target=127.0.0.1"
                _, body, _ = http_get(url)
                if b"probe_success 1" not in body:
                    failures.append((kind, i))

        started = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=STEP_LIMIT)
        wall = time.monotonic() - started
        queries = knot.queries() - before
        return {
            "domains_per_s": count / wall,
            "wall_s": wall,
            "cpu_ms_per_domain": 1000 * (cpu_seconds(proc.pid) - cpu_before) / count,
            "queries_per_domain": queries / count,
            "peak_rss_mib": peak_rss_mib(proc.pid),
            "failed_probes": len(failures),
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def measure_checkdmarc(checkdmarc, knot, count, workdir):
    listed = os.path.join(workdir, "checkdmarc-domains.txt")
    with open(listed, "w") as f:
        f.write("".join(f"{zones.domain(i)}\n" for i in range(count)))
    before = knot.queries()
    wall, cpu, rss, code = timed(
        [checkdmarc, "-n", "127.0.0.1", "-t", "5", "--skip-tls", "-f", "json", listed]
    )
    queries = knot.queries() - before
    return {
        "domains_per_s": count / wall,
        "wall_s": wall,
        "cpu_ms_per_domain": 1000 * cpu / count,
        "queries_per_domain": queries / count,
        "peak_rss_mib": rss,
        "exit": code,
    }


def dnsperf_ceiling(count, workdir):
    data = os.path.join(workdir, "dnsperf.txt")
    with open(data, "w") as f:
        for i in range(min(count, 10000)):
            f.write(f"{zones.domain(i)} MX\n{zones.domain(i)} TXT\n")
    out = run(
        ["dnsperf", "-s", "127.0.0.1", "-d", data, "-l", "10", "-c", "8", "-T", "2", "-q", "500"],
        capture_output=True,
        text=True,
    ).stdout
    return float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))


def median_of(runs):
    keys = runs[0].keys()
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def table(rows, columns):
    header = "| " + " | ".join(c[0] for c in columns) + " |\n"
    header += "|" + "---|" * len(columns) + "\n"
    lines = []
    for row in rows:
        cells = []
        for _, key, fmt in columns:
            value = row.get(key)
            cells.append("—" if value is None else fmt.format(value))
        lines.append("| " + " | ".join(cells) + " |\n")
    return header + "".join(lines)


def inside(args):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    workdir = tempfile.mkdtemp(prefix="maildrift-peers-")
    largest = max(args.sizes + [args.peer_size])
    print(f"generating {largest} zones in {workdir}", flush=True)
    zones.write(largest, workdir)
    knot = Knot(workdir)
    results = {"sizes": {}, "peers": {}}
    try:
        results["knot_qps"] = dnsperf_ceiling(largest, workdir)
        print(f"knot ceiling {results['knot_qps']:.0f} q/s", flush=True)
        for count in args.sizes:
            config = os.path.join(workdir, f"maildrift-{count}.yml")
            maildrift_config(config, count)
            check, daemon = [], []
            for n in range(args.runs):
                check.append(measure_check(args.maildrift, knot, config, count))
                daemon.append(measure_daemon(args.maildrift, knot, config, count, 19725))
                print(f"{count} run {n}: check {check[-1]} daemon {daemon[-1]}", flush=True)
            results["sizes"][count] = {"check": median_of(check), "daemon": median_of(daemon)}
        peer = args.peer_size
        blackbox = [measure_blackbox(knot, peer, 19115, workdir) for _ in range(args.runs)]
        results["peers"]["blackbox"] = median_of(blackbox)
        print(f"blackbox {results['peers']['blackbox']}", flush=True)
        subset = min(1000, peer)
        dmarc = [
            measure_checkdmarc(args.checkdmarc, knot, subset, workdir) for _ in range(args.runs)
        ]
        results["peers"]["checkdmarc"] = median_of(dmarc)
        results["peers"]["checkdmarc_domains"] = subset
        print(f"checkdmarc {results['peers']['checkdmarc']}", flush=True)
    finally:
        knot.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)


def report(args):
    with open(args.json) as f:
        results = json.load(f)
    sizes = {int(k): v for k, v in results["sizes"].items()}
    peer = args.peer_size
    base = sizes.get(peer, sizes[max(sizes)])
    rows = [
        dict(tool="maildrift `check --format json`", work="full analysis", **base["check"]),
        dict(tool="maildrift `run`, first round", work="full analysis", **base["daemon"]),
        dict(tool="blackbox_exporter 0.23", work="MX + TXT only", **results["peers"]["blackbox"]),
        dict(
            tool=f"checkdmarc 6 ({results['peers']['checkdmarc_domains']} domains)",
            work="full analysis without DKIM",
            **results["peers"]["checkdmarc"],
        ),
    ]
    reference = base["daemon"]["domains_per_s"]
    for row in rows:
        row["ratio"] = reference / row["domains_per_s"]
    columns = [
        ("tool", "tool", "{}"),
        ("work per domain", "work", "{}"),
        ("domains/s", "domains_per_s", "{:,.0f}"),
        ("DNS q/domain", "queries_per_domain", "{:.1f}"),
        ("CPU ms/domain", "cpu_ms_per_domain", "{:.2f}"),
        ("peak RSS MiB", "peak_rss_mib", "{:,.0f}"),
        ("maildrift run is × faster", "ratio", "{:.1f}"),
    ]
    scaling = [
        dict(
            domains=f"{count:,}",
            check=v["check"]["domains_per_s"],
            check_rss=v["check"]["peak_rss_mib"],
            ready=v["daemon"]["ready_s"],
            daemon=v["daemon"]["domains_per_s"],
            rss=v["daemon"]["peak_rss_mib"],
            q=v["daemon"]["queries_per_domain"],
            metrics_ms=v["daemon"]["metrics_ms"],
            metrics_mib=v["daemon"]["metrics_mib"],
            series=v["daemon"]["series"] / count,
        )
        for count, v in sorted(sizes.items())
    ]
    scaling_columns = [
        ("domains", "domains", "{}"),
        ("check domains/s", "check", "{:,.0f}"),
        ("check peak RSS MiB", "check_rss", "{:,.0f}"),
        ("run: first round s", "ready", "{:.1f}"),
        ("run domains/s", "daemon", "{:,.0f}"),
        ("run peak RSS MiB", "rss", "{:,.0f}"),
        ("run q/domain", "q", "{:.1f}"),
        ("/metrics ms", "metrics_ms", "{:,.0f}"),
        ("/metrics MiB", "metrics_mib", "{:.1f}"),
        ("series/domain", "series", "{:.1f}"),
    ]
    text = f"""# Benchmark results

Written by `bench/peers.py` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores). Synthetic
company zones (`bench/zones.py`: two MX hosts in the zone, SPF including a provider with
nested includes, DMARC, a 2048-bit DKIM key in two strings, MTA-STS, TLS-RPT), one zone
per domain, served by Knot DNS on 127.0.0.1 in a private network namespace, on the same two
cores as the tool measured. Medians of {args.runs} runs. Queries counted at the server;
peak RSS from the kernel; CPU per domain is the tool's own (Knot's is not included).

Knot's ceiling (dnsperf, MX and TXT questions): {results['knot_qps']:,.0f} queries/s.

## Beside the peers ({peer:,} domains)

{table(rows, columns)}
## maildrift from 1,000 to {max(sizes):,} domains

{table(scaling, scaling_columns)}
"""
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peer-size", type=int, default=10000)
    parser.add_argument("--maildrift", default="target/release/maildrift")
    parser.add_argument("--checkdmarc", default=shutil.which("checkdmarc") or "checkdmarc")
    parser.add_argument("--json", default="bench/results.json")
    parser.add_argument("--out", default="bench/RESULTS.md")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.maildrift = os.path.abspath(args.maildrift)
    args.json = os.path.abspath(args.json)
    args.out = os.path.abspath(args.out)
    if args.report_only:
        report(args)
    elif os.environ.get("MAILDRIFT_BENCH_NETNS") == "1":
        inside(args)
    else:
        env = dict(os.environ, MAILDRIFT_BENCH_NETNS="1")
        subprocess.run(["unshare", "--net", sys.executable, *sys.argv], env=env, check=True)
        report(args)


if __name__ == "__main__":
    main()
