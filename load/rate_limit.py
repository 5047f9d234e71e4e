"""WattWächter rate limit: "A maximum of 25 requests per 10 seconds is allowed (device-wide, not per
IP — multiple clients share the budget)", and over it 429 `Retry-After: 10` {"error":"Too many requests"}.

Run it as it is, on a device that has been idle for at least 10 s (the first window must start from
a fresh budget):

    WW_READ_TOKEN=... locust -f load/rate_limit.py --headless --host http://192.168.1.50/api/v1
    WW_SOURCE_ADDRESSES=127.0.0.2,127.0.0.3 locust -f load/rate_limit.py --host http://127.0.0.1:8080/api/v1

--host is the device origin plus its API prefix /api/v1. Headless is the default of this file. The
load stops by itself after 14 s (WW_RUN_SECONDS; -t stops it earlier) or at 1500 requests: 5 users,
about 8 requests per second each, on GET /system/info (WW_RATE_PATH; the READ token from
WW_READ_TOKEN is sent when set). WW_SOURCE_ADDRESSES lists client addresses the users send from, round
robin (two are needed for the shared-budget check; on loopback 127.0.0.2 and 127.0.0.3 work on Linux).
Afterwards it waits the advertised Retry-After, sends one request from every address, prints the verdict
of each aspect (conformlab.load.verdicts: first_window, every_window, rejections, shared_budget,
recovery) and exits 1 when one failed. In locust's master/worker mode (`--master` here, `--worker
--master-host HOST` on each load host) the workers hand their request records to the master at
their stop, and the master judges.
"""

from locust import constant_pacing, events, task

from conformlab.load import scenario


class RateUser(scenario.DeviceUser):
    kind = "rate"
    max_requests = 1500
    # 5 users x 8/s = 40 requests/s: the budget of 25 is spent within a second of each window.
    wait_time = constant_pacing(0.125)

    @task
    def request(self) -> None:
        self.get(scenario.rate_path())


class FourteenSeconds(scenario.BoundedShape):
    # The first window, and the budget refilling after it (the second window's burst).
    users = 5
    seconds = 14


scenario.install_cli_hooks("rate_limit", events)
