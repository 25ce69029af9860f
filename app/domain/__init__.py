"""Business rules and persistence. No FastAPI, no HTTP status codes here."""
