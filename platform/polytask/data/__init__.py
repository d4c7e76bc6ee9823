"""Data: raw splits from a source, checked, then tokenised into arrays every trial shares."""

from .prepare import PreparedData, SplitArrays, TaskInfo, check_frames, prepare_data
from .sources import load_splits

__all__ = ["PreparedData", "SplitArrays", "TaskInfo", "check_frames", "load_splits", "prepare_data"]
