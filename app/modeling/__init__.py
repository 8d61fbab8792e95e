"""Everything that knows about the live model: loading, architecture adapters, hooks, encoding, targets."""
