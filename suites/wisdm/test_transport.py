"""Transport: with "Accept-Encoding: gzip" the answers come gzip-compressed (Content-Encoding on the wire),
and every read of the schema answers JSON of its documented shape (the document's constraints bind every
cloud; this project's readings bind its own emulator, see schemas/wisdm.yaml).

Which answers a cloud compresses is not said beyond "Enables compressed responses": an answer of 1 KiB or
more must be compressed, a smaller one (compression may cost more than it saves), an error answer, and
`Vary: Accept-Encoding` are the reading; without gzip accepted, an uncompressed answer is too."""

from __future__ import annotations

import pytest

from conformlab.checks import answer
from conformlab.verdicts import not_applicable, requirement
from suites.wisdm.wisdm import (
    OPS, PREFIX, absent_sn, build, busiest_location, call, conforms, gateway, requirement_of, run_scope, send_built,
)

LARGE = 1024  # bytes of an answer that any compressing server compresses
READS = [op for op in OPS if op.method == "GET"]


def _probes(device) -> dict[str, str]:
    of = run_scope(device)
    location, _ = busiest_location(device, of)
    sn = gateway(device, of)[1]
    return {
        "organization": "/organization",
        "locations": f"/organization/{of.org_id}/locations",
        "gateway status": f"/gateway/{sn}/status",
        "status listing": f"/location/{location}/gateways/status",
        "unknown gateway (404)": f"/gateway/{absent_sn(device, sn)}/status",
    }


@pytest.mark.req("WISDM-GZIP")
def test_answers_gzip_compressed(device, report_extra):
    seen, compressed_large = [], 0
    for what, path in _probes(device).items():
        response = call(device, "GET", path, headers={"Accept-Encoding": "gzip"})
        coding = response.headers.get("Content-Encoding", "").strip().lower()
        size = len(response.content)
        seen.append(f"{what}: {response.status_code}, {size} bytes decoded, Content-Encoding {coding or '(none)'}, "
                    f"Vary {response.headers.get('Vary', '(none)')}")
        if response.status_code == 200 and size >= LARGE:
            assert coding == "gzip", (
                f"GET {PREFIX}{path} with Accept-Encoding: gzip: a {size}-byte answer came without gzip "
                f"(Content-Encoding {coding or '(none)'})")
            compressed_large += 1
        else:
            device.reading(coding == "gzip", f"GET {PREFIX}{path} with Accept-Encoding: gzip: the {size}-byte answer "
                                             f"({response.status_code}) came uncompressed; the reading compresses every answer")
        device.reading("accept-encoding" in response.headers.get("Vary", "").lower(),
                       f"GET {PREFIX}{path}: no Vary: Accept-Encoding on an answer that depends on it")
    report_extra(text="\n".join(seen), name="Accept-Encoding: gzip")
    if not compressed_large:
        not_applicable("no answer of 1 KiB or more was seen: nothing shows whether gzip is enabled")


@pytest.mark.req("WISDM-GZIP")
def test_answers_plain_without_gzip(device):
    """Accept-Encoding: identity (gzip not accepted): the answer is not gzip-compressed (RFC 9110; the
    document says nothing of it: the reading)."""
    for what, path in _probes(device).items():
        response = call(device, "GET", path, headers={"Accept-Encoding": "identity"})
        coding = response.headers.get("Content-Encoding", "").strip().lower()
        device.reading(coding in ("", "identity"), f"GET {PREFIX}{path} with Accept-Encoding: identity came with "
                                                   f"Content-Encoding {coding}")


@pytest.mark.parametrize("op", [pytest.param(op, id=str(op), marks=pytest.mark.req("WISDM-ANSWERS", requirement_of(op)))
                                for op in READS])
def test_every_read_answer_matches_the_schema(device, op):
    """Each documented read of the run key's own objects answers 200 with JSON of its documented shape."""
    built = build(device, op, run_scope(device))
    response = send_built(device, op, built)
    with requirement(requirement_of(op)):
        assert response.status_code == 200, f"{op}: {answer(response)}"
    conforms(device, op, response)
