"""The choice of transport for the trainer's end of the Exchange RPC, and the one way to get a server.

Two transports implement :class:`~gym_unity_il.link.server.ExchangeServer` (see
:mod:`gym_unity_il.link.server`): ``fast``, gRPC's completion queue on the caller's thread
through grpcio's internal ``cygrpc`` layer, and ``public``, grpc's public ``grpc.server``.
:func:`make_exchange_server` uses the fast one when the probe of its ``cygrpc`` surface
(:func:`fast_transport_problem`, once per process) finds nothing missing or changed; else the
public one, with one warning per process naming the grpcio version. The environment variable
``GYM_UNITY_IL_TRANSPORT`` (``fast`` or ``public``; unset or empty: the choice above)
overrides it.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence

import grpc

from gym_unity_il.errors import ConfigError
from gym_unity_il.link.public_server import PublicServer
from gym_unity_il.link.server import DEFAULT_MAX_MESSAGE_BYTES, ExchangeServer

logger = logging.getLogger(__name__)

#: The environment variable that chooses the transport.
TRANSPORT_VARIABLE = "GYM_UNITY_IL_TRANSPORT"
#: The transports, by the names the variable takes.
TRANSPORTS = ("fast", "public")


@functools.cache
def fast_transport_problem() -> str | None:
    """Why the fast transport cannot run on the installed grpcio, or None when it can.

    Probed once per process (:func:`gym_unity_il.link.queue_server.probe`): its module
    reads names of ``cygrpc`` when imported, so a failed import is a finding too."""
    try:
        from gym_unity_il.link import queue_server
    except Exception as exc:  # ImportError, AttributeError: grpcio moved or renamed what it reads
        return f"importing it failed: {type(exc).__name__}: {exc}"
    return queue_server.probe()


@functools.cache
def _warn_public_fallback(problem: str) -> None:
    """Says once per process (per problem) that the public transport replaces the fast one."""
    logger.warning(
        "grpcio %s changed the internal API (grpc._cython.cygrpc) of the trainer's fast transport (%s); using grpc's public "
        "server instead, which is slower per step. Set %s=public to choose it and silence this warning, or install a grpcio "
        "within the range gym_unity_il declares",
        grpc.__version__, problem, TRANSPORT_VARIABLE,
    )  # fmt: skip


def choose_transport() -> str:
    """The transport a new server uses: ``GYM_UNITY_IL_TRANSPORT`` when set, else ``fast``
    when the probe passes, else ``public`` (with one warning per process).

    Raises:
        ConfigError: the variable names no transport, or names ``fast`` on a grpcio where the
            probe fails (the message says why).
    """
    chosen = os.environ.get(TRANSPORT_VARIABLE, "")
    if chosen not in ("", *TRANSPORTS):
        raise ConfigError(
            f"{TRANSPORT_VARIABLE}={chosen!r} names no transport of the trainer's server: use 'fast' (gRPC's completion queue "
            "on the caller's thread) or 'public' (grpc's public server), or leave it unset to let the trainer choose"
        )
    if chosen == "public":
        return chosen
    problem = fast_transport_problem()
    if problem is None:
        return "fast"
    if chosen == "fast":
        raise ConfigError(
            f"{TRANSPORT_VARIABLE}=fast, but the fast transport cannot run on grpcio {grpc.__version__}: {problem}. "
            f"Set {TRANSPORT_VARIABLE}=public, or leave it unset to fall back to the public transport"
        )
    _warn_public_fallback(problem)
    return "public"


def make_exchange_server(
    *, port: int, host: str = "127.0.0.1", max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, extra_ports: Sequence[int] = ()
) -> ExchangeServer:
    """A started :class:`~gym_unity_il.link.server.ExchangeServer` on the transport of
    :func:`choose_transport`; arguments and errors as there, and ConfigError as in
    :func:`choose_transport`."""
    if choose_transport() == "fast":
        from gym_unity_il.link.queue_server import QueueServer  # imported only once the probe passed

        return QueueServer(port=port, host=host, max_message_bytes=max_message_bytes, extra_ports=extra_ports)
    return PublicServer(port=port, host=host, max_message_bytes=max_message_bytes, extra_ports=extra_ports)
