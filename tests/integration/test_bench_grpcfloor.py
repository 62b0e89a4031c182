"""bench.grpcfloor on real grpc.aio processes: both kinds of round trip are timed, and each
costs the client and the server some CPU (a broken measurement reads zero or fails)."""

from __future__ import annotations

from bench.grpcfloor import measure


def test_a_unary_call_and_a_stream_message_pair_are_each_timed_in_both_processes() -> None:
    # when a few hundred round trips of each kind are timed
    floors = measure(calls=500)

    # then both kinds were measured, with CPU on both sides and a wall time per round trip
    assert [f.kind for f in floors] == ["unary call", "stream message pair"]
    for floor in floors:
        assert floor.client_us > 0
        assert floor.server_us > 0
        assert floor.wall_us > 0
