"""Time, apart from the conv geometry: each layer's frame hop and the time of its frames.

Frame ``t`` of a layer is placed at the centre of its receptive field in the input:
``time(t) = offset + t * frame_seconds``, where ``offset`` includes the zero padding (or its
absence: an unpadded convolution's frame 0 is centred half its receptive field into the
input). Input frames are centred at ``k * hop`` (centred STFT frames; a waveform's sample
``n`` at ``n / sample_rate``). Phoneme and word groupings map a TextGrid interval
``[start, end)`` to the output frames whose time lies in it.

A layer's support (the frames of it that one output frame depends on) is ``bounded`` in a
stack of convolutions and unbounded above attention, recurrence or a normalization over
time (GroupNorm over time in wav2vec2's first conv): such layers are cropped to a window in
milliseconds (``crop_ms``, 500 ms by default **[choice]**), never by a conv geometry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from gradnap.models.geometry import ConvSpec, StackGeometry


@dataclass(frozen=True)
class LayerTiming:
    """``frame_seconds``: hop between frames; ``offset_seconds``: time of frame 0;
    ``bounded``: whether the gradient support of an output frame is finite (conv stacks);
    ``source``: how it was found (``"geometry"``, ``"architecture"``, ``"declared"``,
    ``"probe (offset assumed 0)"``)."""

    frame_seconds: float
    offset_seconds: float = 0.0
    bounded: bool = False
    source: str = "declared"

    def time(self, t):
        """Centre time (s) of frame ``t`` (an int or an array)."""
        return self.offset_seconds + t * self.frame_seconds

    def crop_frames(self, crop_ms: float) -> int:
        """Frames in a window of ``crop_ms`` milliseconds (at least 1)."""
        return max(1, round(crop_ms / 1000 / self.frame_seconds))

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "frame_ms": 1000 * self.frame_seconds,
            "offset_ms": 1000 * self.offset_seconds,
        }


def from_convs(
    specs: list[ConvSpec], hop_seconds: float, input_offset: float = 0.0, bounded=True
) -> list[LayerTiming]:
    """Timing of the input and of each convolution's output (in order) from the geometry:
    frame ``t`` of layer ``l`` sees input frames ``[t s_l - p_l, t s_l - p_l + RF_l)``, its
    time is the centre of that span. ``p_l`` (accumulated left padding) is taken for a long
    input ("same" padding of a strided conv can depend on the length by a frame)."""
    out = [LayerTiming(hop_seconds, input_offset, bounded, "geometry")]
    geometry = StackGeometry(specs)
    t_in = 100_000
    lengths = geometry.lengths(t_in)
    for i in range(1, len(specs) + 1):
        sub = StackGeometry(specs[:i])
        start, stop = 0, 1
        for j in range(i - 1, -1, -1):  # frame 0 of layer i back to the input
            s = specs[j]
            left, _ = s.same_padding(lengths[j])
            start, stop = start * s.stride - left, (stop - 1) * s.stride - left + s.span
        centre = (start + stop - 1) / 2
        out.append(
            LayerTiming(
                hop_seconds * sub.output_stride,
                input_offset + hop_seconds * centre,
                bounded,
                "geometry",
            )
        )
    return out


def from_probe(hop_seconds: float, t_in: tuple[int, int], t_layer: tuple[int, int]):
    """Frame hop from two probe lengths (input and layer frames); the offset is unknown and
    assumed 0 (the source says so)."""
    d_in, d_layer = t_in[1] - t_in[0], t_layer[1] - t_layer[0]
    stride = d_in / d_layer if d_layer else float("nan")
    if stride > 1.05:  # snap to an integer stride where the lengths allow
        stride = round(stride)
    return LayerTiming(hop_seconds * stride, 0.0, False, "probe (offset assumed 0)")
