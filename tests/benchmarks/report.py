"""The benchmark's outputs: machine description, the printed table, the JSON figures."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.benchmarks import hapi_column
from tests.benchmarks.synthetic import REPO_ROOT

# Every figure the JSON must hold (dotted paths); the smoke test checks them all.
FIGURE_KEYS: tuple[str, ...] = (
    "machine.nproc", "machine.cpu", "machine.ram_gb", "machine.python", "machine.node",
    "roundtrips.ours.reads", "roundtrips.ours.writes",
    "roundtrips.ours.rescreen_reads", "roundtrips.ours.rescreen_writes",
    "roundtrips.naive.reads", "roundtrips.naive.writes",
    "roundtrips.read_ms.ours", "roundtrips.read_ms.naive", "roundtrips.max_reads_any_patient",
    "roundtrips.heavy.reads", "roundtrips.heavy.reads_page_size_1000",
    "evaluation.heavy.resources", "evaluation.heavy.json_loads_ms",
    "evaluation.heavy.evaluate_ms", "evaluation.heavy.ratio", "evaluation.heavy.validate_ratio",
    "evaluation.typical.ratio", "evaluation.typical.validate_ratio",
    "population.patients", "population.resources", "population.lupus_patients",
    "population.load_seconds_per_1000_resources",
    "population.memory.cold_small_mb", "population.memory.cold_large_mb",
    "population.memory.warm_small_mb", "population.memory.warm_large_mb",
    "population.memory.growth_ratio", "population.memory.floor_large_mb",
    "population.breakdown_ms.cold.read", "population.breakdown_ms.cold.write",
    "population.breakdown_ms.cold.rs_check", "population.breakdown_ms.cold.other",
    "population.breakdown_ms.warm.read", "population.breakdown_ms.warm.other",
    "latency.eligibility.p50_ms", "latency.eligibility.p99_ms",
    "latency.eligibility.errors", "latency.eligibility.requests",
    "latency.cds.p50_ms", "latency.cds.p99_ms", "latency.cds.errors",
    "latency.cds_concurrent.p50_ms", "latency.cds_concurrent.p99_ms",
    "triggers.notifications", "triggers.patients", "triggers.seconds_until_all_written",
    "triggers.screenings_run", "triggers.errors", "triggers.same_second_duplicates",
    "triggers.seconds_until_first_written",
    "evaluation.write_check.schema_ms", "evaluation.write_check.model_ms",
    "prevalence.patients", "prevalence.lupus_patients",
    "prevalence.candidates.requests", "prevalence.every_patient.requests",
    "prevalence.candidates.wall_seconds", "prevalence.every_patient.wall_seconds",
    "prevalence.candidates.research_subjects_written",
    "prevalence.every_patient.research_subjects_written",
    "prevalence.candidates.non_candidates_written",
    "prevalence.candidates.rss_mb", "prevalence.every_patient.rss_mb",
    "prevalence.ratios.requests", "prevalence.ratios.wall",
    *(f"worklist.{size}.{part}" for size in ("small", "large") for part in (
        "subjects_per_study", "counted", "errors", "cold_ms", "first.p50_ms", "first.p95_ms",
        "filtered.p50_ms", "filtered.p95_ms", "later.p50_ms", "later.p95_ms",
        "fhir_requests.cold", "fhir_requests.first", "fhir_requests.filtered",
        "fhir_requests.later", "service_peak_rss_mb")),
    "run.seconds", "run.mode",
)


def _first_line(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, OS, Python and Node versions, git commit."""
    cpu = "unknown"
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = match.group(1).strip() if match else platform.processor() or "unknown"
    except OSError:
        pass
    ram_gb = 0.0
    try:
        match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        ram_gb = round(int(match.group(1)) / 1024 / 1024, 1) if match else 0.0
    except OSError:
        pass
    node = os.environ.get("LOCAL_FHIR_NODE") or shutil.which("node") or "node"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": ram_gb,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "node": _first_line([node, "--version"]),
        "commit": _first_line(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"]),
    }


def get(figures: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, or KeyError naming the path."""
    node: Any = figures
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def missing_keys(figures: Mapping[str, Any], *, keys: tuple[str, ...] = FIGURE_KEYS,
                 hapi: bool = False) -> list[str]:
    """`keys` (and with `hapi` the HAPI column's) absent from the figures."""
    out = []
    for path in keys + (hapi_column.FIGURE_KEYS if hapi else ()):
        try:
            get(figures, path)
        except KeyError:
            out.append(path)
    return out


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        text = f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"
    else:
        text = str(value)
    return f"{text}{unit}"


def rows(f: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, value, goal, verdict) lines of the table."""
    out: list[tuple[str, str, str, str]] = []

    def add(name: str, value: str, goal: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("met" if ok else "MISSED")
        out.append((name, value, goal, verdict))

    rt = f["roundtrips"]
    ours, naive = rt["ours"], rt["naive"]
    add("1 Round trips, one patient x 2 studies (first screening)",
        f"{ours['reads']} read + {ours['writes']} write", "<= 2 read + 1 write",
        ours["reads"] <= 2 and ours["writes"] <= 1)
    add("  re-screen, result unchanged", f"{ours['rescreen_reads']} read + "
        f"{ours['rescreen_writes']} write")
    add("  naive baseline (one search per criterion)",
        f"{naive['reads']} read + {naive['writes']} write")
    add("  read time ours / naive (median)", f"{_fmt(rt['read_ms']['ours'], ' ms')} / "
        f"{_fmt(rt['read_ms']['naive'], ' ms')}")
    add(f"  most reads, {rt['patients_checked']} seed patients", str(rt["max_reads_any_patient"]),
        "<= 2", rt["max_reads_any_patient"] <= 2)
    heavy_rt = rt["heavy"]
    add(f"  heavy record (paged, _count={heavy_rt['page_size']} / 1000)",
        f"{heavy_rt['reads']} / {heavy_rt['reads_page_size_1000']} reads")

    ev = f["evaluation"]
    h, t = ev["heavy"], ev["typical"]
    add(f"2 Evaluate heavy record ({h['resources']} resources) / json.loads",
        f"{_fmt(h['ratio'], 'x')} ({_fmt(h['evaluate_ms'], ' ms')} vs "
        f"{_fmt(h['json_loads_ms'], ' ms')})", "<= 3x", h["ratio"] <= 3)
    add(f"  typical seed patient ({t['resources']} resources)",
        f"{_fmt(t['ratio'], 'x')} ({_fmt(t['evaluate_ms'], ' ms')})")
    add("  fhir.resources R4B validation / json.loads",
        f"heavy {_fmt(h['validate_ratio'], 'x')}, typical {_fmt(t['validate_ratio'], 'x')}")
    wc = ev["write_check"]
    add(f"  ResearchSubject check before writing ({wc['extensions']} extensions / "
        f"{wc['resources']})", f"{_fmt(wc['schema_ms'], ' ms')} schema vs "
        f"{_fmt(wc['model_ms'], ' ms')} R4B model", "< 0.5 ms", wc["schema_ms"] < 0.5)

    pop = f["population"]
    proposed = pop.get("proposed", {})

    def rate(run: Mapping[str, Any]) -> str:
        cpu_ratio = f"; CPU {_fmt(run['cpu_ratio'])}" if run.get("cpu_ratio") else ""
        return (f"{_fmt(run['ratio'])} of floor ({_fmt(run['cli']['patients_per_second'])} vs "
                f"{_fmt(run['floor']['patients_per_second'])} patients/s{cpu_ratio})")

    add(f"3 Population {pop['patients']} ({pop['lupus_patients']} lupus), "
        "screen --every-patient:", "")
    for key, run in pop["warm"].items():
        add(f"  nightly re-screen, {run['cli']['workers']} worker(s)", rate(run),
            ">= 0.8 of floor", run["ratio"] >= 0.8)
        if f"warm_{key}" in proposed:
            add("    with the proposed changes", rate(proposed[f"warm_{key}"]),
                ">= 0.8 of floor", proposed[f"warm_{key}"]["ratio"] >= 0.8)
    for key, run in pop["cold"].items():
        add(f"  first screening (2 writes/patient), {run['cli']['workers']} workers", rate(run),
            ">= 0.5 of floor", run["ratio"] >= 0.5)
        if f"cold_{key}" in proposed:
            add("    with the proposed changes", rate(proposed[f"cold_{key}"]))
    def cpu(run: Mapping[str, Any]) -> str:
        c, fl = run["cli"], run["floor"]
        return (f"{_fmt(c['cpu_ms_per_patient'])} + {_fmt(c['server_cpu_ms_per_patient'])} vs "
                f"{_fmt(fl['cpu_ms_per_patient'])} + {_fmt(fl['server_cpu_ms_per_patient'])}")

    low = f"w{min(pop['workers'])}"
    cold_key = next(iter(pop["cold"]))
    add("  CPU ms/patient, CLI + FHIR server vs floor + server:", "")
    add(f"    re-screen, {low[1:]} worker(s) (proposed)",
        cpu(pop["warm"][low]) + (f" ({cpu(proposed['warm_' + low])})"
                                 if f"warm_{low}" in proposed else ""))
    add(f"    first screening, {cold_key[1:]} workers (proposed)",
        cpu(pop["cold"][cold_key]) + (f" ({cpu(proposed['cold_' + cold_key])})"
                                      if f"cold_{cold_key}" in proposed else ""))
    mem = pop["memory"]
    add(f"  peak RSS at {mem['small']} / {mem['large']} patients, first screening",
        f"{_fmt(mem['cold_small_mb'], ' MB')} / {_fmt(mem['cold_large_mb'], ' MB')} "
        f"(+{_fmt(mem['kb_per_patient'])} KB/patient)", "flat", mem["growth_ratio"] <= 1.1)
    if mem.get("warm_large_mb") is not None:
        add("  peak RSS, nightly re-screen (1 worker)",
            f"{_fmt(mem['warm_small_mb'], ' MB')} / {_fmt(mem['warm_large_mb'], ' MB')}",
            "flat", mem["warm_large_mb"] <= mem["warm_small_mb"] * 1.1)
    add("  peak RSS, fetch-only floor",
        f"{_fmt(mem['floor_small_mb'], ' MB')} / {_fmt(mem['floor_large_mb'], ' MB')}")
    cold_split, warm_split = pop["breakdown_ms"]["cold"], pop["breakdown_ms"]["warm"]
    add("  ms/patient first: read, write, RS schema check, rest",
        f"{cold_split['read']}, {cold_split['write']}, {cold_split['rs_check']}, "
        f"{cold_split['other']}")
    add("  ms/patient re-screen: read, write, rest",
        f"{warm_split['read']}, {warm_split['write']}, {warm_split['other']}")

    lat = f["latency"]
    e, c, cc = lat["eligibility"], lat["cds"], lat["cds_concurrent"]
    add(f"4 GET eligibility, {e['clients']} clients x {e['seconds']:.0f} s",
        f"p50 {_fmt(e['p50_ms'], ' ms')}, p99 {_fmt(e['p99_ms'], ' ms')}, "
        f"{e['errors']} errors / {e['requests']}", "0 errors", e["errors"] == 0)
    add(f"  CDS patient-view, full prefetch, 1 client ({c['requests']} requests)",
        f"p50 {_fmt(c['p50_ms'], ' ms')}, p99 {_fmt(c['p99_ms'], ' ms')}",
        "p99 < 500 ms (aim 50)", c["p99_ms"] < 500 and c["errors"] == 0)
    add(f"  CDS patient-view, {cc['clients']} clients",
        f"p50 {_fmt(cc['p50_ms'], ' ms')}, p99 {_fmt(cc['p99_ms'], ' ms')}, "
        f"{cc['errors']} errors", "p99 < 500 ms", cc["p99_ms"] < 500 and cc["errors"] == 0)

    tr = f["triggers"]
    done = tr["seconds_until_all_written"]
    add(f"5 {tr['notifications']} webhooks, {tr['patients']} patients: all written after",
        f"{_fmt(done, ' s')} (first after {_fmt(tr['seconds_until_first_written'], ' s')}; "
        f"coalescing window {_fmt(tr['coalesce_seconds'], ' s')}, "
        f"{tr['embedded_workers']} worker; {tr['errors']} errors, "
        f"{tr['same_second_duplicates']} same-second duplicates refused as replays)",
        "all written, no error", done is not None and tr["errors"] == 0)
    # A notification that arrives after its patient's screening has started needs a screening
    # of its own (the record may have changed since the read): about one per patient is right.
    add("  screenings run (coalescing)", f"{tr['screenings_run']} for {tr['patients']} patients",
        f"<= {tr['patients'] * 11 // 10} (about 1 a patient)",
        tr["screenings_run"] <= tr["patients"] * 11 // 10)
    pv = f["prevalence"]
    cand, every, ratio = pv["candidates"], pv["every_patient"], pv["ratios"]
    add(f"6 Population {pv['patients']} at {pv['prevalence'] * 100:.1f}% prevalence "
        f"({pv['lupus_patients']} lupus), {cand['workers']} workers:", "")
    add("  FHIR requests, --all (candidates) vs --every-patient",
        f"{cand['requests']} vs {every['requests']} ({_fmt(ratio['requests'], 'x')} fewer)",
        ">= 50x fewer", ratio["requests"] >= 50)
    add("  wall time", f"{_fmt(cand['wall_seconds'], ' s')} vs "
        f"{_fmt(every['wall_seconds'], ' s')} ({_fmt(ratio['wall'], 'x')} less)",
        ">= 50x less", ratio["wall"] >= 50)
    add("  ResearchSubjects written", f"{cand['research_subjects_written']} vs "
        f"{every['research_subjects_written']}; {cand['non_candidates_written']} for "
        "non-candidates", "0 for non-candidates", cand["non_candidates_written"] == 0)
    add("  peak RSS", f"{_fmt(cand['rss_mb'], ' MB')} vs {_fmt(every['rss_mb'], ' MB')}")
    if cand.get("finding_seconds") is not None:
        add("  finding the candidates (two searches)", _fmt(cand["finding_seconds"], " s"))

    if "worklist" in f:
        out += worklist_rows(f["worklist"])

    if "hapi" in f:  # --hapi: the same round trips and latency on real HAPI
        for name, value in hapi_column.rows(dict(f)):
            add(name, value)
    return out


def worklist_rows(w: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """Section 7: the coordinator's worklist at both sizes, side by side."""
    small, large = w["small"], w["large"]
    out = [(f"7 Worklist GET / ({w['study']}), {small['subjects_per_study']} / "
            f"{large['subjects_per_study']} subjects a study (x {w['studies']} studies):",
            "", "", "")]

    def both(view: str) -> str:
        return (f"p50 {_fmt(small[view]['p50_ms'], ' ms')}, p95 "
                f"{_fmt(small[view]['p95_ms'], ' ms')} / p50 {_fmt(large[view]['p50_ms'], ' ms')},"
                f" p95 {_fmt(large[view]['p95_ms'], ' ms')}")

    for view, name in (("first", "first page"), ("filtered", "filter status=eligible"),
                       ("later", "a later page (5)")):
        ok = large[view]["p95_ms"] < 1000 and large["errors"] == 0
        out.append((f"  {name}, {w['reps']} views", both(view), "p95 < 1 s at the larger",
                    "met" if ok else "MISSED"))
    out.append(("  first view after start: list shown after (first answer after)",
                f"{_fmt(small['cold_ms'], ' ms')} / {_fmt(large['cold_ms'], ' ms')} "
                f"({_fmt(small.get('cold_first_answer_ms'), ' ms')} / "
                f"{_fmt(large.get('cold_first_answer_ms'), ' ms')})", "", ""))
    rq_small, rq_large = small["fhir_requests"], large["fhir_requests"]
    out.append(("  FHIR requests a view: first after start, then",
                f"{rq_small['cold']}, then {rq_small['first']} / {rq_large['cold']}, then "
                f"{rq_large['first']}", "", ""))
    counted_ok = (small["counted"] == small["subjects_per_study"]
                  and large["counted"] == large["subjects_per_study"])
    out.append(("  patients counted on the page (All)", f"{small['counted']} / {large['counted']}",
                "every subject", "met" if counted_ok else "MISSED"))
    out.append(("  service peak RSS (gunicorn worker)",
                f"{_fmt(small['service_peak_rss_mb'], ' MB')} / "
                f"{_fmt(large['service_peak_rss_mb'], ' MB')}", "", ""))
    return out


def table(figures: Mapping[str, Any]) -> str:
    """The printed table: figure, value, goal, verdict; machine line on top."""
    m = figures["machine"]
    lines = [
        f"Machine: {m['nproc']} cores, {m['cpu']}, {m['ram_gb']} GB RAM, {m['os']}, "
        f"Python {m['python']}, Node {m['node']} (commit {m['commit']})",
        f"Mode: {figures['run']['mode']}, {figures['run']['seconds']:.0f} s, local FHIR server "
        f"{figures['run']['fhir_server']}",
        "",
    ]
    body = rows(figures)
    headers = ("Figure", "Result", "Goal", "")
    widths = [max(len(r[i]) for r in [headers, *body]) for i in range(4)]
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    for row in body:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)
