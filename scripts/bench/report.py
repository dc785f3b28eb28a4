"""Turn the benchmark's raw samples into results.csv and results.md.

Usage: report.py OUT_DIR

Reads OUT_DIR/raw.csv (round,path,metric,value), machine.txt and
mxlock-policy.txt, takes the median of each figure over the rounds, and
writes OUT_DIR/results.csv and OUT_DIR/results.md. Prints the Markdown.
"""

import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

COLUMNS = [
    ("mxlock", "mxlock (encrypt)"),
    ("mxlock-dane", "mxlock (DANE MX)"),
    ("stunnel", "stunnel, resumption on"),
    ("stunnel-noresume", "stunnel, resumption off"),
    ("haproxy", "HAProxy (plain TCP)"),
]
RIVALS = ["stunnel", "stunnel-noresume"]


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

    def median_added(self, path, metric, base="direct"):
        """Median over rounds of path minus base, paired by round."""
        ours = self.values.get((path, metric), {})
        theirs = self.values.get((base, metric), {})
        rounds = set(ours) & set(theirs)
        if not rounds:
            return None
        return statistics.median(ours[r] - theirs[r] for r in rounds)

    def rounds(self):
        return len({r for v in self.values.values() for r in v})


def figures(s):
    """Rows of (name, unit, {path: value}, floor, floor note)."""
    rows = []

    values = {p: s.median(p, "msg1k_relay_us_per_msg") for p, _ in COLUMNS}
    floor = s.median_sum([("haproxy", "msg1k_relay_us_per_msg"), ("floor", "handshake_full_us")])
    rows.append(("Relay CPU per message, 1 KiB, 100 sessions, new connection per message",
                 "us", values, floor, "HAProxy + bare wolfSSL full handshake"))

    values = {p: s.median(p, "keep1k_relay_us_per_msg") for p, _ in COLUMNS}
    floor = s.median("haproxy", "keep1k_relay_us_per_msg")
    rows.append(("Relay CPU per message, 1 KiB, 100 sessions, client connection kept",
                 "us", values, floor, "HAProxy"))

    values = {p: s.median(p, "mib_relay_ms_per_gb") for p, _ in COLUMNS}
    floor = s.median_sum([("haproxy", "mib_relay_ms_per_gb"), ("floor", "aesgcm_ms_per_gb")])
    rows.append(("Relay CPU per GB, 1 MiB messages, 4 sessions", "ms", values, floor,
                 "HAProxy + bare wolfSSL AES-128-GCM"))

    values = {p: s.median(p, "rss_kib_per_session_ehlo") for p, _ in COLUMNS}
    rows.append(("RSS per idle session after EHLO (mxlock: no upstream yet)", "KiB", values,
                 s.median("haproxy", "rss_kib_per_session_ehlo"), "HAProxy"))

    values = {p: s.median(p, "rss_kib_per_session_rcpt") for p, _ in COLUMNS}
    # stunnel opens its upstream TLS session as soon as the client connects.
    for rival in RIVALS:
        values[rival] = s.median(rival, "rss_kib_per_session_ehlo")
    values["haproxy"] = s.median("haproxy", "rss_kib_per_session_ehlo")
    rows.append(("RSS per idle session holding an upstream TLS session", "KiB", values,
                 s.median("floor", "rss_kib_per_tls_session"), "bare wolfSSL client session"))

    for pct in ("p50", "p99"):
        metric = f"latency_{pct}_us"
        values = {p: s.median_added(p, metric) for p, _ in COLUMNS}
        rows.append((f"Added latency {pct}, 1 session, 1 KiB, over direct", "us", values,
                     None, ""))
    for pct in ("p50", "p99"):
        metric = f"latency_{pct}_us"
        values = {"mxlock": s.median_added("mxlock-postfix", metric, base="direct-postfix"),
                  "stunnel": s.median_added("stunnel-postfix", metric, base="direct-postfix")}
        rows.append((f"Added latency {pct} against the Postfix sink, over direct to it", "us",
                     values, None, ""))
    return rows


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


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["figure", "unit"] + [p for p, _ in COLUMNS] +
                     ["floor", "mxlock_vs_stunnel", "mxlock_vs_stunnel_noresume",
                      "mxlock_vs_floor"])
        for name, unit, values, floor, _ in rows:
            mx = values.get("mxlock")
            out.writerow([name, unit] +
                         ["" if values.get(p) is None else f"{values[p]:.2f}" for p, _ in COLUMNS] +
                         ["" if floor is None else f"{floor:.2f}"] +
                         ["" if r is None else f"{r:.3f}" for r in
                          (ratio(mx, values.get("stunnel")),
                           ratio(mx, values.get("stunnel-noresume")), ratio(mx, floor))])


def figures_table(rows):
    head = ["figure", "unit"] + [label for _, label in COLUMNS] + \
        ["floor", "mxlock / stunnel on", "mxlock / stunnel off", "mxlock / floor"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, unit, values, floor, _ in rows:
        mx = values.get("mxlock")
        cells = [name, unit] + [fmt(values.get(p)) for p, _ in COLUMNS] + [fmt(floor)]
        cells += [fmt(ratio(mx, values.get("stunnel")), 2),
                  fmt(ratio(mx, values.get("stunnel-noresume")), 2),
                  fmt(ratio(mx, floor), 2)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Each floor is the cost of:", ""]
    lines += [f"- {name}: {note}" for name, _, _, _, note in rows if note]
    return lines


def sink_table(s):
    paths = ["direct"] + [p for p, _ in COLUMNS]
    head = ["path", "messages/s", "sink CPU us/message", "sink capacity messages/s",
            "relay capacity messages/s", "relay CPU busy %", "resumed handshakes %",
            "sink CPU ms/GB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in paths:
        sink_us = s.median(p, "msg1k_sink_us_per_msg")
        relay_us = s.median(p, "msg1k_relay_us_per_msg")
        rate = s.median(p, "msg1k_msgs_per_s")
        cells = [p, fmt(rate), fmt(sink_us),
                 fmt(1e6 / sink_us if sink_us else None),
                 fmt(1e6 / relay_us if relay_us else None),
                 fmt(relay_us * rate / 1e4 if relay_us and rate else None),
                 fmt(s.median(p, "msg1k_resumed_pct")),
                 fmt(s.median(p, "mib_sink_ms_per_gb"))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def floor_lines(s):
    return [
        f"- wolfSSL AES-128-GCM, 16 KiB records: {fmt(s.median('floor', 'aesgcm_ms_per_gb'))} ms "
        f"of CPU per GB",
        f"- wolfSSL client handshake against the sink, full: "
        f"{fmt(s.median('floor', 'handshake_full_us'))} us; resumed: "
        f"{fmt(s.median('floor', 'handshake_resumed_us'))} us (TCP connect and the greeting "
        f"read included)",
        f"- wolfSSL client session held open after its handshake: "
        f"{fmt(s.median('floor', 'rss_kib_per_tls_session'))} KiB of RSS each",
    ]


def check(label, value, limit, unit):
    if value is None:
        return f"- {label}: not measured"
    verdict = "met" if value <= limit else "not met"
    return f"- {label}: {fmt(value, 2)} {unit} (target at most {fmt(limit, 2)}): {verdict}"


def target_lines(s, rows):
    values = {name: (v, floor) for name, _, v, floor, _ in rows}
    msg = values[rows[0][0]][0]
    keep = values[rows[1][0]][0]
    gb, gb_floor = values[rows[2][0]]
    rss_ehlo = values[rows[3][0]][0]
    rss_up = values[rows[4][0]][0]
    p50 = values[rows[5][0]][0]
    p50_postfix = values[rows[7][0]][0]
    stunnel_msg = msg.get("stunnel")
    return [
        check("relay CPU per message, new connection, mxlock / stunnel (resumption on)",
              ratio(msg.get("mxlock"), stunnel_msg), 0.5, "times"),
        check("relay CPU per message, client connection kept, mxlock / stunnel "
              "(new connection, resumption on)",
              ratio(keep.get("mxlock"), stunnel_msg), 1 / 3, "times"),
        check("relay CPU per GB, mxlock / floor (the target is for the tuned wolfSSL build)",
              ratio(gb.get("mxlock"), gb_floor), 1.2, "times"),
        check("RSS per session holding upstream TLS (the target is for the tuned build)",
              rss_up.get("mxlock"), 24, "KiB"),
        check("RSS per session before the upstream exists", rss_ehlo.get("mxlock"), 4, "KiB"),
        check("added p50 latency over direct", None if p50.get("mxlock") is None
              else p50["mxlock"] / 1000, 1, "ms"),
        check("added p50 latency against Postfix (a 40 ms stall shows here)",
              None if p50_postfix.get("mxlock") is None else p50_postfix["mxlock"] / 1000,
              1, "ms"),
    ]


def main():
    out = Path(sys.argv[1])
    s = Samples(out / "raw.csv")
    rows = figures(s)
    write_csv(out / "results.csv", rows)

    machine = (out / "machine.txt").read_text().strip().splitlines()
    policy_file = out / "mxlock-policy.txt"
    policy = policy_file.read_text().strip().splitlines() if policy_file.exists() else []
    lines = [f"# mxlock benchmark results ({s.rounds()} rounds, medians)", ""]
    lines += ["Machine and versions:", ""] + [f"- {m}" for m in machine] + [""]
    lines += ["What mxlock applied on each of its paths (from its own log):", ""]
    lines += [f"- {p}" for p in policy] + [""]
    lines += ["## Figures", ""] + figures_table(rows) + [""]
    lines += ["## Floors (bare loops, same wolfSSL as mxlock, relay CPU)", ""] + floor_lines(s)
    lines += ["", "## Is the sink the bottleneck?", ""]
    lines += ["1 KiB runs, 100 sessions, new connection per message. The sink shares CPU 1 "
              "with smtp-source and DNS; the relay has CPU 0 to itself. Capacity is "
              "1,000,000 / CPU us per message: what one core would sustain.", ""]
    lines += sink_table(s)
    lines += ["", "## Targets (Debian's wolfSSL build)", ""] + target_lines(s, rows)
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
