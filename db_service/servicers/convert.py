"""Domain records → protobuf messages."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from db_service import models
from protos import db_service_pb2 as pb

_ROLE = {models.Role.CUSTOMER: pb.ROLE_CUSTOMER, models.Role.ADMIN: pb.ROLE_ADMIN}
_STATUS = {
    models.OrderStatus.PLACED: pb.ORDER_STATUS_PLACED,
    models.OrderStatus.CANCELLED: pb.ORDER_STATUS_CANCELLED,
}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(value: datetime) -> Timestamp:
    """As Timestamp.FromDatetime (naive = UTC), in one subtraction: a listed page of 50 orders
    converts 150 of them, and FromDatetime's calendar arithmetic was 6 % of db_service."""
    delta = (value if value.tzinfo else value.replace(tzinfo=UTC)) - _EPOCH
    return Timestamp(seconds=delta.days * 86_400 + delta.seconds, nanos=delta.microseconds * 1000)


def user(u: models.User) -> pb.User:
    return pb.User(
        id=u.id,
        sid=u.sid,
        username=u.username,
        email=u.email,
        role=_ROLE[u.role],
        is_active=u.is_active,
        created_at=timestamp(u.created_at),
        updated_at=timestamp(u.updated_at),
    )


def product(p: models.Product) -> pb.Product:
    return pb.Product(
        id=p.id,
        name=p.name,
        description=p.description,
        category=p.category,
        price=f"{p.price:.2f}",
        slogan=p.slogan,
        stock=p.stock,
        created_at=timestamp(p.created_at),
        updated_at=timestamp(p.updated_at),
    )


def product_view(view: models.ProductView, message: pb.Product) -> pb.Product:
    """Fill `message` (new, or just added to a list) with a read's product: what `product` makes
    of the same product, in a third of the time (tests/integration/repositories prove it)."""
    (
        message.id,
        message.name,
        message.description,
        message.category,
        message.price,
        message.slogan,
        message.stock,
        created_us,
        updated_us,
    ) = view
    created, updated = message.created_at, message.updated_at
    created.seconds, micros = divmod(created_us, 1_000_000)
    created.nanos = micros * 1000
    updated.seconds, micros = divmod(updated_us, 1_000_000)
    updated.nanos = micros * 1000
    return message


def order(o: models.Order) -> pb.Order:
    message = pb.Order(
        id=o.id,
        user_id=o.user_id,
        user_sid=o.user_sid,
        product_id=o.product_id,
        quantity=o.quantity,
        unit_price=f"{o.unit_price:.2f}",
        total_price=f"{o.total_price:.2f}",
        status=_STATUS[o.status],
        created_at=timestamp(o.created_at),
    )
    if o.cancelled_at is not None:
        message.cancelled_at.CopyFrom(timestamp(o.cancelled_at))
    return message
