"""Syntax probes: structural probes (Hewitt & Manning 2019), the tree topological probe (Li et al. 2023)."""
