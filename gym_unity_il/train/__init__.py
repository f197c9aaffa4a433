"""Training from demonstrations: BC, GAIL, BC-then-RL, online BC, DAgger."""
