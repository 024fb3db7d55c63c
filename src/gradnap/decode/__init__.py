"""CTC decoding and error rates."""

from gradnap.decode.ctc import BeamSearchDecoder, greedy_decode
from gradnap.decode.metrics import error_rates

__all__ = ["BeamSearchDecoder", "error_rates", "greedy_decode"]
