"""Everything that touches gRPC and processes: codec, server, launcher, side channels, session."""
