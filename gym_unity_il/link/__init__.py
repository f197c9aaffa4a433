"""Everything that touches gRPC and processes: server, launch settings, launcher, session (the messages themselves: :mod:`gym_unity_il.protocol`)."""
