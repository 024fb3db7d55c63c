"""Training: CTC loss, Adam, length batching, atomic checkpoints and exact resume."""

from gradnap.train.split import train_dev_split
from gradnap.train.trainer import TrainConfig, TrainState, train

__all__ = ["TrainConfig", "TrainState", "train", "train_dev_split"]
