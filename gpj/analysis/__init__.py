"""Analysis of trained models: metrics computed from their predictions and activations."""
