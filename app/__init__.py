"""bertscope: an interactive dashboard for looking inside BERT-family encoders."""

__version__ = "0.1.0"
