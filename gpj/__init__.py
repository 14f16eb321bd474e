"""gpj: where CNNs keep position information after global pooling (JAX/Flax)."""
