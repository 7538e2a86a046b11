"""KeyService: API keys created (token shown once, or a client certificate registered), revoked
and listed by an admin."""

from __future__ import annotations

import grpc

from embedding_studio.v1 import keys_pb2, keys_pb2_grpc
from es_core.api_keys import use_case
from es_core.api_keys.model import ApiKey, Role, fingerprint_text
from es_core.errors import InvalidArgument
from es_server.convert import timestamp
from es_server.state import ServerState

_ROLES: dict[Role, keys_pb2.ApiKeyRole] = {
    Role.SEARCH: keys_pb2.API_KEY_ROLE_SEARCH,
    Role.WRITE: keys_pb2.API_KEY_ROLE_WRITE,
    Role.ADMIN: keys_pb2.API_KEY_ROLE_ADMIN,
}
_ROLES_FROM_PROTO = {v: k for k, v in _ROLES.items()}


def role_from_proto(role: keys_pb2.ApiKeyRole) -> Role:
    try:
        return _ROLES_FROM_PROTO[role]
    except KeyError:
        raise InvalidArgument.field_error(
            "role", "must be API_KEY_ROLE_SEARCH, API_KEY_ROLE_WRITE or API_KEY_ROLE_ADMIN"
        ) from None


def key_to_proto(key: ApiKey) -> keys_pb2.ApiKey:
    return keys_pb2.ApiKey(
        key_id=key.key_id,
        role=_ROLES[key.role],
        app=key.app,
        description=key.description,
        create_time=timestamp(key.create_time),
        revoke_time=timestamp(key.revoke_time),
        client_cert_sha256=fingerprint_text(key.cert_sha256),
    )


class KeyService(keys_pb2_grpc.KeyServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def CreateApiKey(
        self, request: keys_pb2.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.CreateApiKeyResponse:
        role = role_from_proto(request.role)
        if request.client_cert_pem:
            key = await use_case.register_certificate(
                self.state.pool, request.client_cert_pem, role, request.app, request.description
            )
            return keys_pb2.CreateApiKeyResponse(key=key_to_proto(key))
        issued = await use_case.create_key(self.state.pool, role, request.app, request.description)
        return keys_pb2.CreateApiKeyResponse(key=key_to_proto(issued.key), token=issued.token)

    async def RevokeApiKey(
        self, request: keys_pb2.RevokeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.RevokeApiKeyResponse:
        key = await use_case.revoke_key(self.state.pool, request.key_id)
        return keys_pb2.RevokeApiKeyResponse(key=key_to_proto(key))

    async def ListApiKeys(
        self, request: keys_pb2.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.ListApiKeysResponse:
        keys = await use_case.list_keys(self.state.pool, include_revoked=request.include_revoked)
        return keys_pb2.ListApiKeysResponse(keys=[key_to_proto(k) for k in keys])
