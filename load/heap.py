"""WattWächter heap protection: "If the free heap drops below a critical threshold (25 KB), new API
requests are temporarily rejected" with 503 `Retry-After: 5` {"error":"Service temporary unavailable"};
"This typically happens during very large responses (e.g. long history ranges) under concurrent load.
Retrying after a few seconds usually succeeds."

Run it as it is:

    WW_READ_TOKEN=... locust -f load/heap.py --headless --host http://192.168.1.50/api/v1

--host is the device origin plus its API prefix /api/v1. Headless is the default of this file. For
8 s (WW_RUN_SECONDS; at most 1000 requests) 6 users ask concurrently for the largest documented
answers (a day of 15-min values: highRes of yesterday, UTC; a month of daily values: lowRes of the
last 31 days; about 43 KB each on the emulator) with the READ token from WW_READ_TOKEN, while one user
asks the health check /system/alive (no token) every 0.5 s. 429 answers are expected: the rate
budget (25 per 10 s) runs out, and that is documented. Afterwards it waits the advertised Retry-After,
retries a large request, asks the health check once more, prints the verdict of each aspect
(conformlab.load.verdicts: only_documented_5xx, rejections, health_check, retry) and exits 1 when one
failed. A device that never gets below the threshold is reported as "heap protection was not
triggered", not as a pass of the 503 checks.
"""

import itertools

from locust import between, constant_pacing, events, task

from conformlab.load import scenario


class LargeAnswers(scenario.DeviceUser):
    kind = "large"
    fixed_count = 6
    max_requests = 1000
    wait_time = between(0.1, 0.3)
    _started = itertools.count()

    def on_start(self) -> None:
        super().on_start()
        paths = scenario.large_paths()
        first = next(LargeAnswers._started) % len(paths)  # half the users start with each answer
        self.paths = itertools.cycle(paths[first:] + paths[:first])

    @task
    def large(self) -> None:
        self.get(next(self.paths))


class HealthCheck(scenario.DeviceUser):
    kind = "health"
    send_token = False  # the health check is open
    fixed_count = 1
    max_requests = 1000
    wait_time = constant_pacing(0.5)

    @task
    def alive(self) -> None:
        self.get("/system/alive")


class EightSeconds(scenario.BoundedShape):
    users = 7
    seconds = 8


scenario.install_cli_hooks("heap", events)
