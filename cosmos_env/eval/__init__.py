"""Evaluation: metrics, the world-model-vs-MuJoCo comparison, media and reports."""
