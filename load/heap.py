"""Heap-style protection: short of memory, the device refuses new requests for a while with its
documented answer and stays up; retrying after the advertised delay succeeds. The answer, the large
answers that provoke it and the health check come from the device's profile (conformlab.profiles,
RateBudget.protection); for the WattWächter: "If the free heap drops below a critical threshold
(25 KB), new API requests are temporarily rejected" with 503 `Retry-After: 5` {"error":"Service
temporary unavailable"}; "This typically happens during very large responses (e.g. long history
ranges) under concurrent load. Retrying after a few seconds usually succeeds."

Run it as it is:

    CONFORMLAB_READ_TOKEN=... locust -f load/heap.py --headless --host http://192.168.1.50/api/v1

--host is the device origin plus its API prefix; CONFORMLAB_DEVICE and the credentials as in
load/rate_limit.py. Headless is the default of this file. For 8 s (CONFORMLAB_RUN_SECONDS; at most
1000 requests) 6 users ask concurrently for the profile's largest documented answers (WattWächter: a
day of 15-min values, highRes of yesterday, UTC; a month of daily values, lowRes of the last 31 days)
with the scenario's credentials, while one user asks the health check (without credentials when it
is open) every 0.5 s. Over-limit answers are expected: the rate budget runs out, and that is
documented. Afterwards it waits the advertised Retry-After, retries a large request, asks the health
check once more, prints the verdict of each aspect (conformlab.load.verdicts: only_documented_5xx,
rejections, health_check, retry) and exits 1 when one failed. A device that never runs short is
reported as "<protection> was not triggered", not as a pass of the refusal checks.
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
        first = next(LargeAnswers._started) % len(paths)  # the users start spread over the answers
        self.paths = itertools.cycle(paths[first:] + paths[:first])

    @task
    def large(self) -> None:
        self.get(next(self.paths))


class HealthCheck(scenario.DeviceUser):
    kind = "health"
    fixed_count = 1
    max_requests = 1000
    wait_time = constant_pacing(0.5)

    def on_start(self) -> None:
        self.send_credentials = not scenario.budget().protection.health_open
        super().on_start()

    @task
    def alive(self) -> None:
        self.get(scenario.budget().protection.health_path)


class EightSeconds(scenario.BoundedShape):
    users = 7
    seconds = 8


scenario.install_cli_hooks("heap", events)
