"""Token-wise decomposition of an encoder's hidden states (DecompX: Modarressi et al., ACL 2023).

``decompx.decompose`` carries every token representation as one vector per input token (plus a bias part)
through every layer; the attribution and mixing methods read it out.
"""
