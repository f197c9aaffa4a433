"""The codec of communication API 1.x (com.unity.ml-agents 2.0 and later; protocol.md).

:class:`ModernCodec` puts the pure functions of this package behind the
:class:`~gym_unity_il.protocol.codec.Codec` interface: the handshake of
:mod:`~gym_unity_il.protocol.handshake`, the agents of :mod:`~gym_unity_il.protocol.agents`,
the actions of :mod:`~gym_unity_il.protocol.actions` and the messages of
:mod:`~gym_unity_il.protocol.messages`. Reset parameters travel as environment-parameters
side-channel messages ahead of the RESET's other side-channel messages.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol.actions import encode_action_list
from gym_unity_il.protocol.agents import decode_unity_output
from gym_unity_il.protocol.channels import ENVIRONMENT_PARAMETERS_CHANNEL_ID, EnvironmentParametersChannel
from gym_unity_il.protocol.codec import Actions, Codec, Steps
from gym_unity_il.protocol.handshake import handshake_response, read_handshake
from gym_unity_il.protocol.messages import STATUS_OK, encode_trainer_message, parse_unity_message
from gym_unity_il.protocol.side_channels import frame_messages
from gym_unity_il.protocol.templates import MessageTemplates
from gym_unity_il.spec import BehaviorSpec, ImageFormat


#: What :meth:`ModernCodec.parse` returns for a message it decoded by a template: the header of
#: every such message (status 200: a template compares the header's bytes, and only messages of
#: status 200 are decoded).
KNOWN = pb.UnityMessageProto(header=pb.HeaderProto(status=STATUS_OK))


class ModernCodec(Codec):
    """Communication API 1.x, from the build's first message.

    Raises:
        UnityProtocolError: the first message is not a handshake.
        UnityVersionError: an incompatible communication version (protocol.md §5.1).
    """

    side_channels = True

    def __init__(self, first: pb.UnityMessageProto, *, who: str = "Unity") -> None:
        handshake = read_handshake(first, who=who)
        self.unity = handshake.unity
        #: Whether Unity reports the base RL capabilities (the reference trainer warns when not).
        self.base_capabilities = handshake.base_capabilities
        self._channels_first = handshake.channels_first
        self._legacy_actions = handshake.legacy_actions
        self._templates = MessageTemplates()
        self._expected: tuple[MutableMapping[str, BehaviorSpec], ImageFormat] | None = None
        # The last message parsed, its bytes, and its decode when a template made it.
        self._parsed: tuple[pb.UnityMessageProto, bytes, tuple[Steps, bytes] | None] | None = None

    def handshake_response(self, *, seed: int, num_areas: int, package_version: str) -> bytes:
        return handshake_response(seed=seed, package_version=package_version, num_areas=num_areas).SerializeToString()

    def expect(self, specs: MutableMapping[str, BehaviorSpec], image_format: ImageFormat) -> None:
        self._expected = (specs, image_format)

    def parse(self, data: bytes) -> pb.UnityMessageProto:
        """The message of ``data``. One that a template matches (:mod:`~gym_unity_il.protocol.templates`,
        with the specs and format of :meth:`expect`) is decoded at once and not parsed: it comes
        back as :data:`KNOWN`, which holds its header (status 200, as the template's)."""
        if self._expected is not None and (known := self._templates.decode(data, *self._expected)) is not None:
            self._parsed = (KNOWN, data, known)
            return KNOWN
        message = parse_unity_message(data)
        self._parsed = (message, data, None)
        return message

    def decode(self, message: object, specs: MutableMapping[str, BehaviorSpec], image_format: ImageFormat) -> tuple[Steps, bytes]:
        """The message's agents: the template's decode of a message :meth:`parse` found known,
        else the full decoder's. Templates are learned from (and matched, in :meth:`parse`,
        against) the messages decoded with the specs and format of :meth:`expect`."""
        assert isinstance(message, pb.UnityMessageProto)
        parsed, self._parsed = self._parsed, None
        data = parsed[1] if parsed is not None and parsed[0] is message else None
        expected = self._expected is not None and self._expected[0] is specs and self._expected[1] == image_format
        if parsed is not None and parsed[2] is not None and data is not None:
            if expected:
                return parsed[2]
            message = parse_unity_message(data)  # decoded for the expected specs: again, for these
        output = message.unity_output
        steps = decode_unity_output(output, specs, channels_first=self._channels_first, image_format=image_format)
        side_channel = output.rl_output.side_channel
        if data is not None and expected:
            self._templates.learn(data, steps, side_channel, specs, image_format, announced=output.HasField("rl_initialization_output"))
        return steps, side_channel

    def encode(self, command: int, actions: Actions, *, parameters: Mapping[str, float] | None = None, side_channel: bytes = b"") -> bytes:
        lists = {name: encode_action_list(c, d, legacy_vector_actions=self._legacy_actions) for name, (c, d) in actions.items()}
        if parameters:
            messages = ((ENVIRONMENT_PARAMETERS_CHANNEL_ID, EnvironmentParametersChannel.float_payload(k, v)) for k, v in parameters.items())
            side_channel = frame_messages(messages) + side_channel
        return encode_trainer_message(command=command, actions=lists, side_channel=side_channel)
