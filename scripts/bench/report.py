"""Turn the benchmark's raw samples into results.csv and results.md.

Usage: report.py OUT_DIR

Reads OUT_DIR/raw.csv (round,path,metric,value), machine.txt,
mxlock-policy.txt and skipped.txt, takes the median of each figure over the
rounds, and writes OUT_DIR/results.csv and OUT_DIR/results.md. Prints the
Markdown. mxlock is reported for two wolfSSL builds: Debian's libwolfssl
("debian") and the tuned build ("tuned"), each against its own floor.
"""

import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

COLUMNS = [
    ("mxlock", "mxlock (encrypt), Debian wolfSSL"),
    ("mxlock-tuned", "mxlock (encrypt), tuned wolfSSL"),
    ("mxlock-dane", "mxlock (DANE MX), Debian wolfSSL"),
    ("mxlock-dane-tuned", "mxlock (DANE MX), tuned wolfSSL"),
    ("stunnel", "stunnel, resumption on"),
    ("stunnel-noresume", "stunnel, resumption off"),
    ("postfix-dane", "Postfix dane + MTA-STS (queues to disk)"),
    ("haproxy", "HAProxy (plain TCP)"),
]
RIVALS = ["stunnel", "stunnel-noresume"]
# The mxlock path and the floor samples of each wolfSSL build.
BUILDS = [
    ("debian", "Debian wolfSSL", "mxlock", "floor"),
    ("tuned", "tuned wolfSSL", "mxlock-tuned", "floor-tuned"),
]


class Samples:
    def __init__(self, path):
        self.values = defaultdict(dict)
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                key = (row["path"], row["metric"])
                self.values[key][int(row["round"])] = float(row["value"])

    def median(self, path, metric):
        rounds = self.values.get((path, metric))
        return statistics.median(rounds.values()) if rounds else None

    def median_sum(self, parts):
        """Median over rounds of a sum of (path, metric) samples of one round."""
        series = [self.values.get(part, {}) for part in parts]
        rounds = set.intersection(*(set(s) for s in series)) if series else set()
        if not rounds:
            return None
        return statistics.median(sum(s[r] for s in series) for r in rounds)

    def median_added(self, path, metric, base="direct", base_metric=None):
        """Median over rounds of path minus base, paired by round."""
        ours = self.values.get((path, metric), {})
        theirs = self.values.get((base, base_metric or metric), {})
        rounds = set(ours) & set(theirs)
        if not rounds:
            return None
        return statistics.median(ours[r] - theirs[r] for r in rounds)

    def rounds(self):
        return len({r for v in self.values.values() for r in v})


class Row:
    """One figure: its value per path and its floor per wolfSSL build."""

    def __init__(self, key, name, unit, values, floors=None, note=""):
        self.key = key
        self.name = name
        self.unit = unit
        self.values = values
        self.floors = floors or {}
        self.note = note


def per_path(s, metric):
    return {p: s.median(p, metric) for p, _ in COLUMNS}


def cpu_rows(s):
    rows = []
    floors = {build: s.median_sum([("haproxy", "msg1k_relay_us_per_msg"),
                                   (floor, "handshake_full_us")])
              for build, _, _, floor in BUILDS}
    rows.append(Row("msg1k", "Relay CPU per message, 1 KiB, 100 sessions, new connection per "
                    "message", "us", per_path(s, "msg1k_relay_us_per_msg"), floors,
                    "HAProxy + bare wolfSSL full handshake of the same build"))

    floor = s.median("haproxy", "keep1k_relay_us_per_msg")
    rows.append(Row("keep1k", "Relay CPU per message, 1 KiB, 100 sessions, client connection "
                    "kept", "us", per_path(s, "keep1k_relay_us_per_msg"),
                    {build: floor for build, *_ in BUILDS}, "HAProxy"))

    floors = {build: s.median_sum([("haproxy", "mib_relay_ms_per_gb"),
                                   (floor, "aesgcm_ms_per_gb")])
              for build, _, _, floor in BUILDS}
    rows.append(Row("mib", "Relay CPU per GB, 1 MiB messages, 4 sessions", "ms",
                    per_path(s, "mib_relay_ms_per_gb"), floors,
                    "HAProxy + bare wolfSSL AES-128-GCM of the same build"))
    return rows


def memory_rows(s):
    rows = []
    floor = s.median("haproxy", "rss_kib_per_session_ehlo")
    rows.append(Row("rss_ehlo", "RSS per idle session after EHLO (mxlock: no upstream yet; "
                    "Postfix: PSS summed over its processes)", "KiB",
                    per_path(s, "rss_kib_per_session_ehlo"),
                    {build: floor for build, *_ in BUILDS}, "HAProxy"))

    values = per_path(s, "rss_kib_per_session_rcpt")
    # stunnel and HAProxy open their upstream connection as soon as the
    # client connects. Postfix's outbound sessions belong to its queue, not
    # to a client session, so it has no figure here.
    for path in RIVALS + ["haproxy"]:
        values[path] = s.median(path, "rss_kib_per_session_ehlo")
    floors = {build: s.median(floor, "rss_kib_per_tls_session") for build, _, _, floor in BUILDS}
    rows.append(Row("rss_rcpt", "RSS per idle session holding an upstream TLS session", "KiB",
                    values, floors, "bare wolfSSL client session of the same build"))
    return rows


def latency_rows(s):
    rows = []
    for pct in ("p50", "p99"):
        values = {p: s.median_added(p, f"latency_{pct}_us") for p, _ in COLUMNS}
        # Postfix replies to the end of DATA once the message is queued, so
        # the comparable figure is the time until the sink has the message.
        values["postfix-dane"] = s.median_added("postfix-dane", f"latency_delivered_{pct}_us",
                                                base_metric=f"latency_{pct}_us")
        rows.append(Row(f"latency_{pct}", f"Added latency {pct} until the sink has the message, "
                        "1 session, 1 KiB, over direct", "us", values))
    for pct in ("p50", "p99"):
        values = {"postfix-dane": s.median_added("postfix-dane", f"latency_{pct}_us")}
        rows.append(Row(f"latency_queued_{pct}", f"Added latency {pct} to Postfix's reply to "
                        "the end of DATA (queued, not yet delivered), over direct", "us", values))
    for pct in ("p50", "p99"):
        metric = f"latency_{pct}_us"
        values = {path: s.median_added(f"{path}-postfix", metric, base="direct-postfix")
                  for path in ("mxlock", "mxlock-tuned", "stunnel")}
        rows.append(Row(f"latency_postfix_{pct}", f"Added latency {pct} against the Postfix "
                        "sink, over direct to it", "us", values))
    return rows


def figures(s):
    return cpu_rows(s) + memory_rows(s) + latency_rows(s)


def fmt(value, digits=1):
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def ratios(row):
    """mxlock of each build against stunnel (resumption on) and its floor."""
    out = []
    for build, _, path, _ in BUILDS:
        out.append(ratio(row.values.get(path), row.values.get("stunnel")))
        out.append(ratio(row.values.get(path), row.floors.get(build)))
    return out


def ratio_heads():
    heads = []
    for _, label, _, _ in BUILDS:
        heads += [f"mxlock ({label}) / stunnel on", f"mxlock ({label}) / floor"]
    return heads


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["figure", "unit"] + [p for p, _ in COLUMNS] +
                     [f"floor_{build}" for build, *_ in BUILDS] +
                     [f"{path}_vs_{other}" for _, _, path, _ in BUILDS
                      for other in ("stunnel", "floor")])
        for row in rows:
            out.writerow([row.name, row.unit] +
                         ["" if row.values.get(p) is None else f"{row.values[p]:.2f}"
                          for p, _ in COLUMNS] +
                         ["" if row.floors.get(b) is None else f"{row.floors[b]:.2f}"
                          for b, *_ in BUILDS] +
                         ["" if r is None else f"{r:.3f}" for r in ratios(row)])


def figures_table(rows):
    head = ["figure", "unit"] + [label for _, label in COLUMNS] + \
        [f"floor, {label}" for _, label, _, _ in BUILDS] + ratio_heads()
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row.name, row.unit] + [fmt(row.values.get(p)) for p, _ in COLUMNS]
        cells += [fmt(row.floors.get(b)) for b, *_ in BUILDS]
        cells += [fmt(r, 2) for r in ratios(row)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Each floor is the cost of:", ""]
    lines += [f"- {row.name}: {row.note}" for row in rows if row.note]
    lines += ["", "Postfix accepts each message into its queue on disk (with fsync) and "
              "delivers it afterwards, so its load runs end when the sink has every "
              "message, and its CPU is that of all its processes and mta-sts-daemon "
              "(cpuacct cgroup) over that whole time. It runs fewer messages than the "
              "other paths (see machine.txt); the figures are per message or per GB "
              "all the same."]
    return lines


def sink_table(s):
    paths = ["direct"] + [p for p, _ in COLUMNS]
    head = ["path", "messages/s", "sink CPU us/message", "sink capacity messages/s",
            "relay capacity messages/s", "relay CPU busy %", "TLS handshakes at the sink",
            "resumed handshakes %", "sink CPU ms/GB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in paths:
        sink_us = s.median(p, "msg1k_sink_us_per_msg")
        relay_us = s.median(p, "msg1k_relay_us_per_msg")
        rate = s.median(p, "msg1k_msgs_per_s")
        cells = [p, fmt(rate), fmt(sink_us),
                 fmt(1e6 / sink_us if sink_us else None),
                 fmt(1e6 / relay_us if relay_us else None),
                 fmt(relay_us * rate / 1e4 if relay_us and rate else None),
                 fmt(s.median(p, "msg1k_handshakes")),
                 fmt(s.median(p, "msg1k_resumed_pct")),
                 fmt(s.median(p, "mib_sink_ms_per_gb"))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def floor_lines(s):
    lines = []
    for _, label, _, floor in BUILDS:
        if s.median(floor, "aesgcm_ms_per_gb") is None:
            lines.append(f"- {label}: not measured")
            continue
        lines += [
            f"- {label}, AES-128-GCM, 16 KiB records: "
            f"{fmt(s.median(floor, 'aesgcm_ms_per_gb'))} ms of CPU per GB",
            f"- {label}, client handshake against the sink, full: "
            f"{fmt(s.median(floor, 'handshake_full_us'))} us; resumed: "
            f"{fmt(s.median(floor, 'handshake_resumed_us'))} us (TCP connect and the "
            f"greeting read included)",
            f"- {label}, client session held open after its handshake: "
            f"{fmt(s.median(floor, 'rss_kib_per_tls_session'))} KiB of RSS each",
        ]
    return lines


def verdict(value, limit):
    if value is None:
        return "not measured"
    return "met" if value <= limit else "not met"


def target_table(rows):
    """Build the targets table: per target the limit, and per build the figure
    and whether it meets the limit."""
    by_key = {row.key: row for row in rows}
    stunnel_msg = by_key["msg1k"].values.get("stunnel")

    def ms(value):
        return None if value is None else value / 1000

    targets = [
        ("relay CPU per message, new connection, mxlock / stunnel (resumption on)",
         "times", 0.5, lambda b, path: ratio(by_key["msg1k"].values.get(path), stunnel_msg)),
        ("relay CPU per message, client connection kept (upstream reuse), mxlock / stunnel "
         "(new connection, resumption on)",
         "times", 1 / 3, lambda b, path: ratio(by_key["keep1k"].values.get(path), stunnel_msg)),
        ("relay CPU per GB, mxlock / floor (the target is set for the tuned build)",
         "times", 1.2, lambda b, path: ratio(by_key["mib"].values.get(path),
                                             by_key["mib"].floors.get(b))),
        ("RSS per session holding upstream TLS (the target is set for the tuned build)",
         "KiB", 24, lambda b, path: by_key["rss_rcpt"].values.get(path)),
        ("RSS per session before the upstream exists", "KiB", 4,
         lambda b, path: by_key["rss_ehlo"].values.get(path)),
        ("added p50 latency over direct", "ms", 1,
         lambda b, path: ms(by_key["latency_p50"].values.get(path))),
        ("added p50 latency against the Postfix sink (a 40 ms stall shows here)", "ms", 1,
         lambda b, path: ms(by_key["latency_postfix_p50"].values.get(path))),
    ]
    head = ["target", "limit"]
    for _, label, _, _ in BUILDS:
        head += [f"mxlock, {label}", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, unit, limit, measure in targets:
        cells = [name, f"at most {fmt(limit, 2)} {unit}"]
        for build, _, path, _ in BUILDS:
            value = measure(build, path)
            cells += [fmt(value, 2), verdict(value, limit)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def scaling_table(s):
    """mxlock with one event loop and with two (workers), not pinned."""
    head = ["workers", "messages/s", "relay CPU us/message", "relay CPU busy %",
            "sink CPU us/message"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for path, label in (("mxlock-w1", "1"), ("mxlock-w2", "2")):
        rate = s.median(path, "msg1k_msgs_per_s")
        relay_us = s.median(path, "msg1k_relay_us_per_msg")
        cells = [label, fmt(rate), fmt(relay_us),
                 fmt(relay_us * rate / 1e4 if relay_us and rate else None),
                 fmt(s.median(path, "msg1k_sink_us_per_msg"))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def read_lines(path):
    return path.read_text().strip().splitlines() if path.exists() else []


def main():
    out = Path(sys.argv[1])
    s = Samples(out / "raw.csv")
    rows = figures(s)
    write_csv(out / "results.csv", rows)

    machine = read_lines(out / "machine.txt")
    policy = read_lines(out / "mxlock-policy.txt")
    skipped = [line for line in read_lines(out / "skipped.txt") if line]
    lines = [f"# mxlock benchmark results ({s.rounds()} rounds, medians)", ""]
    lines += ["Machine and versions:", ""] + [f"- {m}" for m in machine] + [""]
    if skipped:
        lines += ["Not measured in this run:", ""] + [f"- {m}" for m in skipped] + [""]
    lines += ["What each relay applied (from its own log):", ""]
    lines += [f"- {p}" for p in policy] + [""]
    lines += ["## Figures", ""] + figures_table(rows) + [""]
    lines += ["## Floors (bare wolfSSL loops on the relay CPU)", ""] + floor_lines(s)
    lines += ["", "## Is the sink the bottleneck?", ""]
    lines += ["1 KiB runs, 100 sessions, new connection per message. The sink shares CPU 1 "
              "with smtp-source and DNS; the relay has CPU 0 to itself. Capacity is "
              "1,000,000 / CPU us per message: what one core would sustain.", ""]
    lines += sink_table(s)
    lines += ["", "## Event loops (workers)", ""]
    lines += ["1 KiB runs, 100 sessions, new connection per message, through mxlock "
              "(the build in workers_check above) with workers: 1 and workers: 2. "
              "Nothing is pinned: the loops, the sink and smtp-source share every "
              "CPU, so on a small machine the second loop can only take what the "
              "others leave. Busy % above 100 means more than one core.", ""]
    lines += scaling_table(s)
    lines += ["", "## Targets, per wolfSSL build", ""] + target_table(rows)
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
