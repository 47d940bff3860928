"""The queue on /metrics: depth by state and tenant (bounded), drafts, oldest ready age,
claims and attempts."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from templator.monitoring.families import TOP_TENANTS, queue
from tests.work.conftest import Queue


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_the_scrape_shows_the_queue_by_state_and_tenant(queue: Queue) -> None:
    for _ in range(3):
        await queue.create()
    await queue.create(draft=True)
    await queue.claim()

    response = await queue.client.get("/metrics")

    samples = _samples(response.text)
    tenant = queue.owner.id
    assert samples[("templator_work_queue_sessions", (("state", "ready"), ("tenant", tenant)))] == 2
    key = ("templator_work_queue_sessions", (("state", "processing"), ("tenant", tenant)))
    assert samples[key] == 1
    assert samples[("templator_work_queue_drafts", ())] >= 1
    assert samples[("templator_work_oldest_ready_seconds", ())] >= 0
    assert samples[("templator_work_claims_total", ())] >= 1
    assert samples[("templator_work_attempts_total", (("attempt", "1"),))] >= 1


def test_tenants_beyond_the_top_ones_are_summed_as_other() -> None:
    tenants = [
        {
            "tenant": f"u{i}",
            "ready": i,
            "retry_wait": 0,
            "processing": 0,
            "expired": 0,
            "oldest_ready_seconds": float(i),
        }
        for i in range(TOP_TENANTS + 5)
    ]
    depth, drafts, oldest = list(queue(tenants, 7))

    ready = {s.labels["tenant"]: s.value for s in depth.samples if s.labels["state"] == "ready"}
    assert len(ready) == TOP_TENANTS + 1
    assert ready["other"] == sum(range(5))
    assert drafts.samples[0].value == 7
    assert oldest.samples[0].value == TOP_TENANTS + 4


async def test_each_recorded_phase_is_timed_on_metrics(queue: Queue) -> None:
    await queue.create()
    claim = (await queue.claim())[0]
    phase = {"phase": "section_detection", "payload": {"s": 1}, "progress": 0.3}
    before = _samples((await queue.client.get("/metrics")).text)
    key = ("templator_session_phase_seconds_count", (("phase", "section_detection"),))

    recorded = await queue.write(
        "POST", f"/sessions/{claim['session']['id']}/phases", claim["lease"]["token"], json=phase
    )

    assert recorded.status_code == 200
    after = _samples((await queue.client.get("/metrics")).text)
    assert after[key] == before.get(key, 0) + 1
