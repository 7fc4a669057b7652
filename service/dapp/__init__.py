"""What a dApp's frontend reads before it starts: keys, destinations, limits, sign-in."""
