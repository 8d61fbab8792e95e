"""Long work per corpus or dataset: the job contract, the registry, the manager, one module per family."""
