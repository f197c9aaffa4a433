"""Helpers for testing the package itself: the fuzz cases of its parsers of untrusted bytes.

:mod:`gym_unity_il.testing.fuzz_cases` is shared by the fuzz tests (``tests/``) and
``benchmarks/fuzz_inputs.py``. It sits above every other layer, since it drives the `.demo`
reader and writer, the built-in scene player's encoding and the protocol's decoding, and it
needs the ``dev`` extra (hypothesis). Nothing of the package imports it.
"""
