"""The DBService servicer: proto ↔ domain translation only, one mixin per domain."""

from __future__ import annotations

from db_service.servicers.base import Services
from db_service.servicers.orders import OrderRpcs
from db_service.servicers.products import ProductRpcs
from db_service.servicers.users import UserRpcs
from protos import db_service_pb2_grpc


class DBServiceServicer(UserRpcs, ProductRpcs, OrderRpcs, db_service_pb2_grpc.DBServiceServicer):
    """Every DBService RPC."""

    def __init__(self, services: Services) -> None:
        self._s = services


__all__ = ["DBServiceServicer", "Services"]
