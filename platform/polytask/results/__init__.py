"""Results: the comparison and its statistics, the trivial predictor, the report (Markdown, HTML, plots), the model registry.

Reads MLflow through polytask.ops.tracking; never imports study execution."""
