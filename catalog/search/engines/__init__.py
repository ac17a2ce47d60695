"""Search engines behind one interface; the PostgreSQL engine always works."""
