"""One protocol era behind one interface: what a session asks of the messages of its build.

A session does not know which ML-Agents release it talks to until the build's first message
(the handshake) has come. :func:`gym_unity_il.protocol.eras.open_codec` reads that message's
version string and returns the :class:`Codec` of its era: the modern one
(:class:`~gym_unity_il.protocol.modern.ModernCodec`, communication API 1.x) or a seed-era one
(:class:`~gym_unity_il.protocol.legacy.LegacyCodec`, ``API-4`` ... ``API-11``). From then on
the session, and everything above it, only meets the interface below: specs, ``(decision,
terminal)`` batches of numpy arrays, and actions in the same arrays, whatever the era.

What differs between eras, and how each codec answers it:

* parameters: :meth:`Codec.encode` takes the parameters to apply at the next reset; a modern
  build gets them on the environment-parameters side channel with the RESET, a 0.x build as
  the RESET's reset parameters (a STEP carries none there);
* which behaviors take actions (:meth:`Codec.takes_actions`): every one in the modern era; in
  0.4 ... 0.10 only the brains Python controls (External brains, or brains "controlled" in the
  Broadcast Hub); the others (Player brains) are
  decided inside Unity, and their agents' stored actions are what they did
  (:attr:`~gym_unity_il.protocol.agents.StepBatch.stored_actions`);
* side channels (:attr:`Codec.side_channels`) exist in the modern era only.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, MutableMapping

import numpy as np

from gym_unity_il.protocol.agents import StepBatch
from gym_unity_il.protocol.handshake import UnityInfo
from gym_unity_il.spec import BehaviorSpec, ImageFormat

#: Per behavior, ``(decision steps, terminal steps)`` of one message from Unity.
Steps = dict[str, tuple[StepBatch, StepBatch]]
#: Per behavior, ``(continuous float32 [n, c], discrete int32 [n, d])`` for its deciding agents.
Actions = Mapping[str, tuple[np.ndarray, np.ndarray]]

#: ``UnityRLInput.command`` in every era.
STEP, RESET = 0, 1


class Codec(abc.ABC):
    """The messages of one protocol era, for one session (a codec may keep state between messages).

    Attributes:
        unity: what the build said about itself in the handshake.
        side_channels: whether the era has side channels (communication API 1.x).
        reset_parameters: the parameters the build announced with their defaults (0.x), or
            None when the era announces none (any key may be sent).
    """

    unity: UnityInfo
    side_channels: bool
    reset_parameters: Mapping[str, float] | None = None

    @abc.abstractmethod
    def handshake_response(self, *, seed: int, num_areas: int, package_version: str) -> bytes:
        """The answer to the build's first call."""

    def expect(self, specs: MutableMapping[str, BehaviorSpec], image_format: ImageFormat) -> None:
        """Tells the codec the ``specs`` and ``image_format`` that :meth:`decode` will be called
        with (the session's own), so that it may decode a message it knows while parsing it."""

    @abc.abstractmethod
    def parse(self, data: bytes) -> object:
        """One message of the build from its bytes; it has ``header.status``.

        Raises:
            UnityProtocolError: the bytes are not a message of this era.
        """

    @abc.abstractmethod
    def decode(self, message: object, specs: MutableMapping[str, BehaviorSpec], image_format: ImageFormat) -> tuple[Steps, bytes]:
        """The agents of one parsed message, per behavior of ``specs`` (behaviors announced by
        the message are added to it), and the message's side-channel bytes (empty without).

        Raises:
            UnityProtocolError: data that does not fit its behavior, damaged data, more than the limits.
        """

    @abc.abstractmethod
    def encode(self, command: int, actions: Actions, *, parameters: Mapping[str, float] | None = None, side_channel: bytes = b"") -> bytes:
        """The trainer's answer: ``command`` (:data:`STEP` or :data:`RESET`), the actions of
        behaviors that take them (arrays of the right shapes: one row per decision step of the
        last message), with a RESET the ``parameters`` to apply first, and ``side_channel``
        (framed messages; modern only).

        Raises:
            ConfigError: a parameter the build cannot take (a 0.x build takes only the ones it announced).
            ValueError: actions for a behavior that takes none, or of the wrong shape.
        """

    def takes_actions(self, behavior: str) -> bool:
        """Whether the trainer decides for ``behavior`` (else Unity does, and no action is sent)."""
        return True
