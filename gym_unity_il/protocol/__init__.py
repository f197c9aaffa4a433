"""The ML-Agents protocol as pure functions: bytes and messages in, arrays and specs out, and back.

Nothing here opens a socket or a file: the live link (:mod:`gym_unity_il.link`) and the
`.demo` reader and writer (:mod:`gym_unity_il.demo`) both stand on these modules, so that
a message of Unity and a record of a recording are decoded by the same code and checked by
the same rules.

* :mod:`~gym_unity_il.protocol.wire`: varints, field framing, packed values, one message's fields;
* :mod:`~gym_unity_il.protocol.scan`: the same wire format read with numpy, many messages at once;
* :mod:`~gym_unity_il.protocol.images`: PNG (one or several back to back) to arrays and back;
* :mod:`~gym_unity_il.protocol.observations`: ObservationProto to arrays and back, and the
  policy on NaN and infinities;
* :mod:`~gym_unity_il.protocol.specs`: behavior specs from brain parameters, and the limits
  on what a message may declare;
* :mod:`~gym_unity_il.protocol.agents`: the agents of a message of Unity as batches of arrays;
* :mod:`~gym_unity_il.protocol.actions`: actions to bytes and back;
* :mod:`~gym_unity_il.protocol.messages`: whole messages: parsing Unity's, writing the trainer's;
* :mod:`~gym_unity_il.protocol.handshake`: versions, capabilities and the handshake's checks;
* :mod:`~gym_unity_il.protocol.side_channels` and :mod:`~gym_unity_il.protocol.channels`:
  side-channel framing and the built-in channels.
"""
