"""HTTP layer: JSON API, pages and the FastAPI application factory."""
