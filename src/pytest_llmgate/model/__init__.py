"""The model layer: targets (where and how a model is served), wire formats and transport."""
