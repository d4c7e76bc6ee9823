"""Operations, below every other wing: MLflow access (tracking), the tracking server, artifacts, Ray jobs,
pre-flight checks, credentials, fault injection."""
