"""Context-mixing methods: how much each token's representation draws on every other token."""
