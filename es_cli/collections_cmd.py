"""``es collections list|switch|rollback``: the blue/green collections, through
DeploymentService."""

from __future__ import annotations

import argparse

import grpc

from embedding_studio.v1 import deployment_pb2
from es_cli.api_options import add_api_arguments, api_client, call_failed, enum_label
from es_core.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="every live collection, newest first")
    switch = actions.add_parser("switch", help="make a reindexed green collection blue")
    switch.add_argument("collection_id")
    rollback = actions.add_parser("rollback", help="make the previous blue collection blue again")
    for action in (listing, switch, rollback):
        add_api_arguments(action)


def run_collections(settings: Settings, args: argparse.Namespace) -> int:
    moved: (
        deployment_pb2.SwitchBlueCollectionResponse | deployment_pb2.RollbackBlueCollectionResponse
    )
    with api_client(settings, args) as client:
        try:
            if args.action == "list":
                print(format_collections(client.list_collections()))
                return 0
            if args.action == "switch":
                moved = client.switch_blue_collection(args.collection_id)
            else:
                moved = client.rollback_blue_collection()
        except grpc.RpcError as error:
            return call_failed(f"collections {args.action}", error)
    print(f"blue: {moved.blue.collection_id} (model {moved.blue.model_id})")
    print(f"previous: {moved.previous.collection_id} (model {moved.previous.model_id})")
    return 0


def format_collections(collections: list[deployment_pb2.Collection]) -> str:
    lines = [f"{'COLLECTION':<36}  {'STATE':<8}  {'ITEMS':>8}  {'DIMS':>5}  MODEL"]
    for c in collections:
        state = enum_label(deployment_pb2.CollectionState.Name(c.state), "COLLECTION_STATE_")
        lines.append(
            f"{c.collection_id:<36}  {state:<8}  {c.item_count:>8}  {c.dimensions:>5}  {c.model_id}"
        )
    return "\n".join(lines)
