"""Sparse-autoencoder features: dictionaries trained on one layer's activations (see :mod:`.sae`)."""
