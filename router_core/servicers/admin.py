"""AdminService: projects, keys, credits, channels. Protos in and out; the domain does the work."""
from __future__ import annotations

from onekey.v1 import admin_pb2, admin_pb2_grpc
from router_core import tables
from router_core.admin import AdminService
from router_core.channels import ChannelPool
from router_core.errors import InvalidRequest
from router_core.model_sync import ModelSync, SyncReport
from router_core.prices import PACKAGE
from router_core.settings import ConfigError
from router_core.servicers.common import from_timestamp, timestamp, unary


def project_proto(p: tables.Project) -> admin_pb2.Project:
    return admin_pb2.Project(
        id=p.id, name=p.name, balance_micro_usd=p.balance_micro_usd, free_requests=p.free_requests,
        created_at=timestamp(p.created_at), rate_limit_rpm=p.rate_limit_rpm, closed_at=timestamp(p.closed_at),
    )


def key_proto(k: tables.ApiKey) -> admin_pb2.ApiKey:
    return admin_pb2.ApiKey(
        id=k.id, project_id=k.project_id, name=k.name, prefix=k.prefix,
        created_at=timestamp(k.created_at), last_used_at=timestamp(k.last_used_at),
        revoked_at=timestamp(k.revoked_at), rate_limit_rpm=k.rate_limit_rpm,
        spend_limit_micro_usd=k.spend_limit_micro_usd, expires_at=timestamp(k.expires_at),
    )


def sync_proto(report: SyncReport) -> admin_pb2.SyncModelsResponse:
    names = sorted({*report.listed, *report.errors})
    return admin_pb2.SyncModelsResponse(
        channels=[admin_pb2.ChannelListing(channel=n, listed=report.listed.get(n, 0), error=report.errors.get(n, ""))
                  for n in names],
        unpriced=[admin_pb2.UnpricedModels(provider=p, upstream_ids=ids) for p, ids in sorted(report.unpriced.items())],
        servable=report.servable, price_source=PACKAGE)


def _rpm(request) -> int | None:
    """The request's optional rate_limit_rpm: None when unset."""
    return request.rate_limit_rpm if request.HasField("rate_limit_rpm") else None


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, admin: AdminService, pool: ChannelPool, sync: ModelSync | None = None) -> None:
        self._admin = admin
        self._pool = pool
        self._sync = sync

    @unary
    async def SyncModels(self, request, context):
        if self._sync is None:
            raise InvalidRequest("this core serves a fixed catalog")
        return sync_proto(await self._sync.sync())

    @unary
    async def Reload(self, request, context):
        if self._sync is None:
            raise InvalidRequest("this core serves a fixed catalog")
        try:
            return sync_proto(await self._sync.reload())
        except ConfigError as exc:  # names the file and line; the old catalog keeps serving
            raise InvalidRequest(f"reload refused, nothing changed: {exc}") from None

    @unary
    async def CreateProject(self, request, context):
        project = await self._admin.create_project(request.name, request.credit_micro_usd, request.free_requests,
                                                   _rpm(request))
        return project_proto(project)

    @unary
    async def GetProject(self, request, context):
        return project_proto(await self._admin.get_project(request.project_id))

    @unary
    async def RenameProject(self, request, context):
        return project_proto(await self._admin.rename_project(request.project_id, request.name))

    @unary
    async def CreateKey(self, request, context):
        key, secret = await self._admin.create_key(
            request.project_id, request.name, _rpm(request),
            request.spend_limit_micro_usd if request.HasField("spend_limit_micro_usd") else None,
            from_timestamp(request.expires_at, request.HasField("expires_at")))
        return admin_pb2.CreateKeyResponse(key=key_proto(key), secret=secret)

    @unary
    async def ListKeys(self, request, context):
        keys = await self._admin.list_keys(request.project_id)
        return admin_pb2.ListKeysResponse(keys=[key_proto(k) for k in keys])

    @unary
    async def RevokeKey(self, request, context):
        return key_proto(await self._admin.revoke_key(request.key_id, request.project_id))

    @unary
    async def CloseProject(self, request, context):
        project, revoked = await self._admin.close_project(request.project_id)
        return admin_pb2.CloseProjectResponse(keys_revoked=revoked, project=project_proto(project))

    @unary
    async def UpdateKey(self, request, context):
        return key_proto(await self._admin.update_key(
            request.key_id, request.project_id,
            spend_limit_micro_usd=request.spend_limit_micro_usd if request.HasField("spend_limit_micro_usd") else None,
            clear_spend_limit=request.clear_spend_limit,
            expires_at=from_timestamp(request.expires_at, request.HasField("expires_at")),
            clear_expiry=request.clear_expiry))

    @unary
    async def AddCredit(self, request, context):
        project, applied = await self._admin.add_credit(
            request.project_id, request.amount_micro_usd, request.idempotency_key, request.reason)
        return admin_pb2.AddCreditResponse(project=project_proto(project), applied=applied)

    @unary
    async def AddFreeRequests(self, request, context):
        return project_proto(await self._admin.add_free_requests(request.project_id, request.count))

    @unary
    async def SetRateLimit(self, request, context):
        target = request.WhichOneof("target")
        if target == "project_id":
            project = await self._admin.set_project_rate_limit(request.project_id, _rpm(request))
            return admin_pb2.SetRateLimitResponse(project=project_proto(project))
        if target == "key_id":
            key = await self._admin.set_key_rate_limit(request.key_id, _rpm(request))
            return admin_pb2.SetRateLimitResponse(key=key_proto(key))
        raise InvalidRequest("name a project_id or a key_id", param="target")

    @unary
    async def ListChannels(self, request, context):
        channels = []
        for c in self._pool.channels:
            health = self._pool.health(c)
            channels.append(admin_pb2.Channel(
                name=c.name, provider=c.provider, base_url=c.base_url, priority=c.priority, weight=c.weight,
                state=health.status(), error_rate=health.error_rate(), latency_ms_p50=health.latency_p50() * 1000,
                requests=health.requests, models=list(c.models)))
        return admin_pb2.ListChannelsResponse(channels=channels)
