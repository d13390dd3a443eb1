"""Guardrails: the text pre-guard (`text`) that every text meant for a model passes first."""
