"""Protobuf messages of ML-Agents' protocol, generated from ``protos/`` by ``protos/generate.py``.

Never edit the ``*_pb2.py`` files by hand: change the ``.proto`` and regenerate.
"""
