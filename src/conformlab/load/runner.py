"""Run one locustfile of load/ through locust's library API and write its results.

    python -m conformlab.load.runner {rate_limit,heap} --device NAME --host http://127.0.0.1:PORT/api/v1
        --out DIR [--run-seconds N] [--source-address 127.0.0.2 --source-address 127.0.0.3]

The device's budget, answers and paths come from its profile (conformlab.profiles); its credentials
from CONFORMLAB_<KEY> (e.g. CONFORMLAB_READ_TOKEN; never the command line). Writes into DIR: result.json
(records, verdict, locust's statistics as text), chart.svg, locust_report.html and the CSV files
locust_*.csv. No web UI and no master: nothing listens anywhere. Exit status 0 once result.json is
written, whatever the verdict (that is in the JSON); anything else is a crash.

Started by conformlab.load.run_scenario() in a process of its own: importing locust monkey-patches
the standard library with gevent.
"""

from __future__ import annotations

import locust  # noqa: F401  first: gevent patches the standard library before anything else uses it

import argparse
import json
import os
import sys
import time
from pathlib import Path

import gevent
from locust.env import Environment
from locust.html import get_html_report
from locust.stats import (PERCENTILES_TO_REPORT, StatsCSVFileWriter, get_error_report_summary,
                          get_percentile_stats_summary, get_stats_summary, stats_history)
from locust.util.load_locustfile import load_locustfile

from conformlab.load import scenario, verdicts
from conformlab.load.chart import accepted_rejected_svg

LOCUSTFILES = {"rate_limit": "rate_limit.py", "heap": "heap.py"}


def project_root() -> Path:
    """The checkout: the folder holding load/ and schemas/ (from the working directory or this file)."""
    for folder in [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]:
        if (folder / "load").is_dir() and (folder / "schemas").is_dir():
            return folder
    raise FileNotFoundError("cannot find the conformlab checkout (a folder with load/ and schemas/)")


def run(name: str, device: str, host: str, out: Path, *, run_seconds: float | None, sources: list[str],
        locustfile: Path | None = None) -> dict:
    os.environ[scenario.DEVICE_ENV] = device  # the users read them (as in a CLI run)
    os.environ[scenario.SOURCES_ENV] = ",".join(sources)
    scenario.require(name)
    budget = scenario.budget()
    path = locustfile or project_root() / "load" / LOCUSTFILES[name]
    user_classes, shapes = load_locustfile(str(path))
    if not shapes:
        raise SystemExit(f"{path}: no LoadTestShape (the scenario's users and run time)")
    shape = shapes[0]  # the locustfile's bounded shape: how many users, how long
    seconds = run_seconds or scenario.run_seconds(shape.seconds)

    env = Environment(user_classes=list(user_classes.values()), host=host)
    scenario.RECORDER.attach(env.events)
    runner = env.create_local_runner()
    csv_prefix = out / "locust"
    csv_writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, str(csv_prefix), full_history=True)
    helpers = [gevent.spawn(csv_writer.stats_writer), gevent.spawn(stats_history, runner)]

    started = time.time()
    runner.start(shape.users, spawn_rate=100)
    # gevent's clock is the loop's, cached since its last turn (before the imports above): read the
    # real time first, or the load stops as much earlier as the imports took.
    gevent.get_hub().loop.update_now()
    gevent.spawn_later(seconds, runner.quit)
    runner.greenlet.join()
    load_ended = time.time()

    # Outside the timed load: wait the advertised Retry-After, then recovery / retry / health check.
    records = scenario.RECORDER.records
    records += scenario.post_run(name, host, records, sources=sources, auth=scenario.scenario_auth())
    records.sort(key=lambda r: r["t"])

    gevent.sleep(1.1)  # one more round of the CSV writer, then stop it
    gevent.killall(helpers)
    csv_writer.close_files()
    report = out / "locust_report.html"
    report.write_text(get_html_report(env, show_download_link=False), encoding="utf-8")
    chart = accepted_rejected_svg(records, budget, title=f"{name}: requests per second",
                                  budget_line=name == "rate_limit")
    (out / "chart.svg").write_text(chart, encoding="utf-8")

    verdict = verdicts.evaluate(name, records, budget)
    stats_text = "\n".join([*get_stats_summary(env.stats, current=False), "",
                            *get_percentile_stats_summary(env.stats), "",
                            *get_error_report_summary(env.stats)])
    return {
        "name": name, "host": host, "started_at": started, "load_seconds": round(load_ended - started, 3),
        "records": records, "verdicts": verdict.aspects, "notes": verdict.notes,
        "triggered": verdict.triggered, "passed": verdict.passed, "verdict_text": verdict.text(),
        "requests_sent": len(records), "last_request_at": max((r["t"] for r in records), default=0.0),
        "stats_text": stats_text, "chart_svg": chart, "html_report": str(report),
        "csv_prefix": str(csv_prefix),
        "errors": [row["msg"] for row in runner.exceptions.values()],  # exceptions inside users
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformlab.load.runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=sorted(LOCUSTFILES))
    parser.add_argument("--device", required=True, help="the device under load (conformlab.profiles)")
    parser.add_argument("--host", required=True, help="device origin + prefix, e.g. http://127.0.0.1:8080/api/v1")
    parser.add_argument("--out", required=True, type=Path, help="folder for result.json, CSV and HTML")
    parser.add_argument("--run-seconds", type=float, default=None, help="length of the timed load")
    parser.add_argument("--source-address", action="append", default=[], dest="sources",
                        help="client address to send from (repeat; users take them round robin)")
    parser.add_argument("--locustfile", type=Path, default=None, help="instead of load/<scenario>.py")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    result = run(args.scenario, args.device, args.host.rstrip("/"), args.out, run_seconds=args.run_seconds,
                 sources=args.sources, locustfile=args.locustfile)
    (args.out / "result.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(result["verdict_text"], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
