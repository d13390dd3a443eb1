"""Text for instruction-conditioned world models: a word vocabulary built from the
instruction corpus and a small text encoder trained with the world model. Every text goes
through the pre-guard (``guardrails.text``) before it becomes token ids."""
