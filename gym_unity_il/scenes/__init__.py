"""Built-in scenes: numpy simulations served over Unity's protocol from their own process."""
