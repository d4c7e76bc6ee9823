"""Study execution: the driver (run), the Ray Tune search with Optuna, schedulers, trials, single-task baselines, distillation teachers, progress."""
