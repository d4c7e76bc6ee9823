"""polytask: multi-task-learning studies on Ray Tune, Optuna and MLflow.

A study compares ways of balancing tasks (weighting strategies) and of sharing parameters
(sharing strategies) on the user's own data: ``polytask run studies/quickstart.yaml``.
"""

__version__ = "0.1.0"
