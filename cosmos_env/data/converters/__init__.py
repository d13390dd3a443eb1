"""Converters from other robot-data formats into the episode store."""
