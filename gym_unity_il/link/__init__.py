"""Everything that touches gRPC and processes: server, launcher, session (the messages themselves: :mod:`gym_unity_il.protocol`)."""
