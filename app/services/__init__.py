"""The services layer: the runner (sole holder of the live model) and what serves requests."""
