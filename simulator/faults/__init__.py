"""How the world misbehaves: network faults in front of the backend."""
