"""Database: engine, models and the column types that keep time in UTC."""
