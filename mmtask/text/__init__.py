"""Text preprocessing that runs inside the model, so training and the exported model agree."""

from mmtask.text.normalizer import as_normalizer
from mmtask.text.tweet_normalizer import TweetNormalizer

__all__ = ["TweetNormalizer", "as_normalizer"]
