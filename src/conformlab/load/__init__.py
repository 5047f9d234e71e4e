"""Load scenarios (rate limit, heap-style protection) run for a verdict, from the pytest side.

    result = run_scenario("rate_limit", "http://127.0.0.1:8080/api/v1", device="wattwaechter",
                          credentials={"read_token": token}, source_addresses=["127.0.0.2", "127.0.0.3"],
                          out_dir=tmp)
    assert not any(result.verdicts.values()), result.verdict_text

The scenarios are the locustfiles in load/ (users run the same files with the `locust` command). What
they send and how they judge the answers comes from the device's profile: its RateBudget
(conformlab.profiles) with the answer over the budget and the heap-style protection; a device
without one has no load scenarios (`applicable` says why not).
Importing locust monkey-patches the standard library with gevent, so each run happens in a process
of its own (`python -m conformlab.load.runner`); this module imports neither locust nor gevent.

The caller guarantees what a scenario cannot: the rate scenario needs a fresh budget (the device idle
for a whole window before the call; `last_request_at` says when this run last sent anything).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

# Nothing here imports requests or ssl (conformlab.profiles does): the runner process imports this
# package before `import locust` patches the standard library with gevent.
from .verdicts import HEAP_ASPECTS, RATE_ASPECTS, Verdict, why_not_applicable

__all__ = ["SCENARIOS", "ScenarioError", "ScenarioResult", "not_applicable_because", "run_scenario"]

SCENARIOS = {"rate_limit": RATE_ASPECTS, "heap": HEAP_ASPECTS}
# The environment of a scenario process (conformlab.load.scenario reads it; see there).
ENV_PREFIX = "CONFORMLAB_"
DEVICE_ENV, SOURCES_ENV = ENV_PREFIX + "DEVICE", ENV_PREFIX + "SOURCE_ADDRESSES"
RUN_SECONDS_ENV, RATE_PATH_ENV = ENV_PREFIX + "RUN_SECONDS", ENV_PREFIX + "RATE_PATH"


def credential_env(key: str) -> str:
    """The environment variable of one credential key (read_token -> CONFORMLAB_READ_TOKEN)."""
    return ENV_PREFIX + key.upper()


def not_applicable_because(device: str, name: str) -> str | None:
    """Why `device` has no scenario `name` (its profile declares no rate budget, no heap-style
    protection...), or None when it has one."""
    from conformlab.profiles import PROFILES

    return why_not_applicable(PROFILES[device].rate_budget, name)


class ScenarioError(RuntimeError):
    """The scenario could not be run (timeout, crash): no verdict."""


@dataclass
class ScenarioResult:
    name: str
    records: list[dict[str, Any]]  # one per request, see conformlab.load.verdicts
    verdicts: dict[str, list[str]]  # aspect -> problems; an empty list: the aspect passed
    triggered: bool | None  # rate_limit: an over-limit answer was seen; heap: a protection answer
    notes: list[str]  # e.g. "heap protection was not triggered (...)"
    requests_sent: int
    last_request_at: float  # epoch seconds: when this run last sent a request to the device
    stats_text: str  # locust's statistics tables
    chart_svg: str  # accepted vs rejected per second (rate_limit: with the budget line)
    html_report: Path  # locust's own HTML report
    csv_prefix: Path  # locust's CSV files: <prefix>_stats.csv, _stats_history.csv, _failures.csv ...
    result_json: Path
    wall_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def passed(self) -> bool:
        return not any(self.verdicts.values())

    @property
    def verdict_text(self) -> str:
        return Verdict(self.name, self.verdicts, self.triggered, self.notes).text()


def run_scenario(name: str, base_url: str, *, device: str, credentials: Mapping[str, str] | None = None,
                 source_addresses: Sequence[str] = (), out_dir: Path, run_seconds: float | None = None,
                 timeout: float = 120) -> ScenarioResult:
    """Run load/<name>.py for `device` (a profile name) against `base_url` (device origin + prefix,
    e.g. http://host/api/v1) in a locust process of its own and return its verdict. `credentials`:
    the target's (keys of its [auth] table). ScenarioError when it does not finish within `timeout`
    seconds (the process is killed) or fails without a result."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    reason = not_applicable_because(device, name)
    if reason:
        raise ValueError(f"no {name} scenario for {device}: {reason}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result_json = out_dir / "result.json"
    result_json.unlink(missing_ok=True)
    command = [sys.executable, "-m", "conformlab.load.runner", name, "--device", device,
               "--host", base_url.rstrip("/"), "--out", str(out_dir)]
    if run_seconds is not None:
        command += ["--run-seconds", str(run_seconds)]
    for address in source_addresses:
        command += ["--source-address", address]
    # Only the caller's settings: none of a scenario's variables from the caller's own environment.
    env = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}
    for key, value in (credentials or {}).items():
        if value:
            env[credential_env(key)] = value  # the environment, never the command line (visible in ps)
    log = out_dir / "runner.log"
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as output:
        try:
            process = subprocess.run(command, env=env, stdout=output, stderr=subprocess.STDOUT,
                                     timeout=timeout, check=False)
        except subprocess.TimeoutExpired:  # subprocess.run has killed it
            raise ScenarioError(f"load scenario {name!r} did not finish within {timeout:g} s and was "
                                f"killed; its output: {log}") from None
    if process.returncode != 0 or not result_json.is_file():
        raise ScenarioError(f"load scenario {name!r} failed (exit status {process.returncode}):\n"
                            f"{_tail(log)}")
    data = json.loads(result_json.read_text(encoding="utf-8"))
    if data.get("errors"):
        raise ScenarioError(f"load scenario {name!r}: exceptions inside the locust users: {data['errors']}")
    return ScenarioResult(
        name=name, records=data["records"], verdicts=data["verdicts"], triggered=data["triggered"],
        notes=data["notes"], requests_sent=data["requests_sent"], last_request_at=data["last_request_at"],
        stats_text=data["stats_text"], chart_svg=data["chart_svg"], html_report=Path(data["html_report"]),
        csv_prefix=Path(data["csv_prefix"]), result_json=result_json, wall_seconds=round(time.monotonic() - started, 2),
        extra={key: data[key] for key in ("host", "started_at", "load_seconds")})


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
