"""MeteringService: read-only. It has no method that writes, by design."""
from __future__ import annotations

from onekey.v1 import common_pb2, metering_pb2, metering_pb2_grpc
from router_core import tables
from router_core.servicers.common import from_timestamp, timestamp, unary
from router_core.usage_reports import UsageReports

_GROUPS = {
    metering_pb2.GROUP_BY_UNSPECIFIED: "day", metering_pb2.GROUP_BY_DAY: "day",
    metering_pb2.GROUP_BY_MODEL: "model", metering_pb2.GROUP_BY_KEY: "key",
}


def event_proto(e: tables.UsageEvent) -> metering_pb2.UsageEvent:
    return metering_pb2.UsageEvent(
        request_id=e.request_id, time=timestamp(e.time), project_id=e.project_id, key_id=e.key_id,
        model=e.model, provider=e.provider, channel=e.channel,
        usage=common_pb2.Usage(input_tokens=e.input_tokens, output_tokens=e.output_tokens,
                               cached_input_tokens=e.cached_input_tokens,
                               reasoning_tokens=e.reasoning_tokens, estimated=e.estimated,
                               cache_write_tokens=e.cache_write_tokens),
        cost_micro_usd=e.cost_micro_usd, charged_micro_usd=e.charged_micro_usd, status=e.status,
        latency_ms=e.latency_ms, ttfb_ms=e.ttfb_ms, endpoint=e.endpoint, stream=e.stream,
        error_code=e.error_code or "", requested_model=e.requested_model or "",
    )


def _row(values: tuple) -> metering_pb2.UsageRow:
    group, requests, inp, out, cached, reasoning, cost, charged, errors = values
    return metering_pb2.UsageRow(group=group, requests=requests, input_tokens=inp, output_tokens=out,
                                 cached_input_tokens=cached, reasoning_tokens=reasoning,
                                 cost_micro_usd=cost, charged_micro_usd=charged, errors=errors)


class MeteringServicer(metering_pb2_grpc.MeteringServiceServicer):
    def __init__(self, reports: UsageReports) -> None:
        self._reports = reports

    @unary
    async def GetBalance(self, request, context):
        p = await self._reports.balance(request.project_id)
        return metering_pb2.Balance(project_id=p.id, balance_micro_usd=p.balance_micro_usd,
                                    free_requests=p.free_requests, reserved_micro_usd=p.leased_micro_usd)

    @unary
    async def GetUsageSummary(self, request, context):
        rows = await self._reports.summary(
            request.project_id, from_timestamp(request.start, request.HasField("start")),
            from_timestamp(request.end, request.HasField("end")), _GROUPS.get(request.group_by, "day"))
        total = tuple(sum(r[i] for r in rows) for i in range(1, 9))
        return metering_pb2.UsageSummary(rows=[_row(r) for r in rows], total=_row(("total", *total)))

    @unary
    async def ListUsageEvents(self, request, context):
        events, token = await self._reports.events(
            request.project_id, from_timestamp(request.start, request.HasField("start")),
            from_timestamp(request.end, request.HasField("end")), request.page_size, request.page_token,
            request.status, request.model, request.key_id)
        return metering_pb2.ListUsageEventsResponse(events=[event_proto(e) for e in events],
                                                    next_page_token=token)

    @unary
    async def GetRequestUsage(self, request, context):
        return event_proto(await self._reports.request(request.request_id, request.project_id))

    @unary
    async def ListCredits(self, request, context):
        entries = await self._reports.credits(request.project_id, request.limit)
        return metering_pb2.ListCreditsResponse(entries=[
            metering_pb2.CreditEntry(time=timestamp(e.created_at), amount_micro_usd=e.amount_micro_usd,
                                     reason=e.reason) for e in entries])
