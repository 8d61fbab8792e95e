"""Evaluations: faithfulness of analyses measured against the model's own behaviour."""
