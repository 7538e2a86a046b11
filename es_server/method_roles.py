"""The role each RPC needs: one table for every method of every service of the contract.

A test checks that it names every method the protos declare, so a new RPC cannot ship without
a decision here; the interceptor treats a method missing from it as admin-only all the same."""

from __future__ import annotations

from es_core.api_keys.model import Role

_SEARCH, _WRITE, _ADMIN = Role.SEARCH, Role.WRITE, Role.ADMIN

_BY_SERVICE: dict[str, dict[str, Role]] = {
    "SearchService": {
        "Search": _SEARCH,
        "SearchByPayload": _SEARCH,
        "CountItems": _SEARCH,
        "FindSimilarItems": _SEARCH,
        "PredictCategories": _SEARCH,
    },
    # Session reads and writes are scoped to the key's app (es_core/clickstream/use_case.py).
    "ClickstreamService": {
        "RegisterSession": _SEARCH,
        "PushEvents": _SEARCH,
        "StreamEvents": _SEARCH,
        "MarkSessionIrrelevant": _SEARCH,
        "GetSession": _SEARCH,
        "ListSessions": _SEARCH,
        "UseSessionsForImprovement": _SEARCH,
    },
    "SuggestionService": {
        "Suggest": _SEARCH,
        "ListPhrases": _WRITE,
        "AddPhrases": _WRITE,
        "DeletePhrases": _WRITE,
        "UpdatePhrases": _WRITE,
        "GetPhrases": _WRITE,
    },
    "CategoryService": {
        "UpsertCategories": _WRITE,
        "DeleteCategories": _WRITE,
        "ListCategories": _SEARCH,
    },
    "UpsertService": {
        "UpsertItems": _WRITE,
        "ImportItems": _WRITE,
        "DeleteItems": _WRITE,
        "GetItems": _SEARCH,
    },
    # A writer follows the tasks its upserts and deletes return; the rest of tasks is admin's.
    "TaskService": {
        "GetTask": _WRITE,
        "WatchTask": _WRITE,
        "ListTasks": _ADMIN,
        "CancelTask": _ADMIN,
        "RestartTask": _ADMIN,
    },
    "FineTuneService": {
        "StartFineTuning": _ADMIN,
        "GetFineTuningTask": _ADMIN,
        "ListFineTuningTasks": _ADMIN,
    },
    "DeploymentService": {
        "DeployModel": _ADMIN,
        "UndeployModel": _ADMIN,
        "ListModels": _ADMIN,
        "ListCollections": _ADMIN,
        "GetBlueCollection": _ADMIN,
        "SwitchBlueCollection": _ADMIN,
        "RollbackBlueCollection": _ADMIN,
        "StartReindex": _ADMIN,
        "DeleteCollection": _ADMIN,
        "GetInterleavingVerdict": _ADMIN,
        "SetFilterableFields": _ADMIN,
    },
    "RankingService": {
        "GetRankingSettings": _ADMIN,
        "SetRankingSpec": _ADMIN,
        "DeclareSignalFields": _ADMIN,
        "ListRankingSpecs": _ADMIN,
        "RollbackRankingSpec": _ADMIN,
        "StartRankingFit": _ADMIN,
    },
    "KeyService": {
        "CreateApiKey": _ADMIN,
        "RevokeApiKey": _ADMIN,
        "ListApiKeys": _ADMIN,
    },
}

PACKAGE = "embedding_studio.v1"

#: Full gRPC method path ("/embedding_studio.v1.SearchService/Search") -> the role it needs.
METHOD_ROLES: dict[str, Role] = {
    f"/{PACKAGE}.{service}/{method}": role
    for service, methods in _BY_SERVICE.items()
    for method, role in methods.items()
}


def required_role(method: str) -> Role:
    """The role ``method`` needs; admin for one the table does not name."""
    return METHOD_ROLES.get(method, Role.ADMIN)
