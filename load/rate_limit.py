"""Rate limit: from a fresh budget the device accepts exactly its documented budget per window, for
all clients together, refuses the rest with its documented answer, and serves again once the client
has waited the advertised Retry-After. The budget, the answer and the request come from the device's
profile (conformlab.profiles, RateBudget); for the WattWächter: "A maximum of 25 requests per 10
seconds is allowed (device-wide, not per IP — multiple clients share the budget)", and over it 429
`Retry-After: 10` {"error":"Too many requests"}.

Run it as it is, on a device that has been idle for at least a window (the first window must start
from a fresh budget):

    CONFORMLAB_READ_TOKEN=... locust -f load/rate_limit.py --headless --host http://192.168.1.50/api/v1
    CONFORMLAB_SOURCE_ADDRESSES=127.0.0.2,127.0.0.3 locust -f load/rate_limit.py --host http://127.0.0.1:8080/api/v1

--host is the device origin plus its API prefix. CONFORMLAB_DEVICE names the device (default: the
one device whose profile declares a rate budget); its credentials come from CONFORMLAB_<KEY>, one per
key of the target's [auth] table (sent at the access level the budget names, e.g. READ). Headless is
the default of this file. The load stops by itself after a window and 4 s more (WattWächter: 14 s;
CONFORMLAB_RUN_SECONDS; -t stops it earlier) or at three times the requests it plans: 5 users
together at 16 times the budget's rate (WattWächter: 40 requests per second), on the profile's
request (CONFORMLAB_RATE_PATH overrides it). CONFORMLAB_SOURCE_ADDRESSES lists client addresses the users
send from, round robin (two are needed for the shared-budget check; on loopback 127.0.0.2 and
127.0.0.3 work on Linux). Afterwards it waits the advertised Retry-After, sends one request from every
address, prints the verdict of each aspect (conformlab.load.verdicts: first_window, every_window,
rejections, shared_budget, recovery) and exits 1 when one failed. In locust's master/worker mode
(`--master` here, `--worker --master-host HOST` on each load host) the workers hand their request
records to the master at their stop, and the master judges.
"""

from locust import constant_pacing, events, task

from conformlab.load import scenario


USERS = 5
BUDGET = scenario.require("rate_limit")
# 16 times the budget's rate: each window's budget is spent in its first sixteenth (WattWächter:
# 40 requests per second, 25 accepted within 0.6 s). The first window, and the budget refilling
# after it (the second window's burst).
RATE = 16 * BUDGET.requests / BUDGET.seconds
SECONDS = BUDGET.seconds + 4


class RateUser(scenario.DeviceUser):
    kind = "rate"
    max_requests = int(3 * RATE * SECONDS)
    wait_time = constant_pacing(USERS / RATE)

    @task
    def request(self) -> None:
        self.get(scenario.rate_path())


class WindowAndBurst(scenario.BoundedShape):
    users = USERS
    seconds = SECONDS


scenario.install_cli_hooks("rate_limit", events)
