"""Neuron-level analyses: activation index, descriptor discovery and neuron-descriptor association."""
