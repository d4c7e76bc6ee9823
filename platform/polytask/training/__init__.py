"""The training loop and what it trains: the model (encoder, sharing, heads), the gradient engine, frozen features.

Imports neither Ray nor MLflow: a trial (polytask.study.trial) runs it and reports what it returns."""
