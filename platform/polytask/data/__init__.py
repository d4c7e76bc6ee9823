"""Data: datasets from their sources, checked, then encoded into arrays every trial shares."""

from .prepare import PreparedData, SplitArrays, check_frames, prepare_data, train_texts
from .sources import Dataset, load_datasets, load_splits
from .summary import summarise

__all__ = ["Dataset", "PreparedData", "SplitArrays", "check_frames", "load_datasets", "load_splits", "prepare_data", "summarise", "train_texts"]
