"""The LSTM memory cell of ``mixed_memory=True`` layers (parameter names and initialisation as ncps's)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LSTMCell(nn.Module):
    """An LSTM cell with forget-gate bias +1, run before each liquid step in mixed-memory layers.

    Lechner & Hasani 2020, "Learning long-term dependencies in irregularly-sampled time series": the LSTM's
    output state becomes the liquid cell's state, its cell state carries long-term memory.

    Args:
        input_size: I, number of input features.
        hidden_size: H, the liquid cell's state size.

    Shapes: ``forward(inputs (B, I), (h (B, H), c (B, H))) -> (h (B, H), c (B, H))``.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.input_map = nn.Linear(input_size, 4 * hidden_size, bias=True)
        self.recurrent_map = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        self.init_weights()

    def init_weights(self) -> None:
        """Xavier input weights, orthogonal recurrent weights, biases uniform in [-0.1, 0.1] (as ncps)."""
        nn.init.xavier_uniform_(self.input_map.weight)
        nn.init.uniform_(self.input_map.bias, -0.1, 0.1)
        nn.init.orthogonal_(self.recurrent_map.weight)

    def forward(self, inputs: Tensor, states: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = states
        z = self.input_map(inputs) + self.recurrent_map(h)
        i, ig, fg, og = z.chunk(4, dim=1)  # candidate, input gate, forget gate, output gate
        c = c * torch.sigmoid(fg + 1.0) + torch.tanh(i) * torch.sigmoid(ig)
        h = torch.tanh(c) * torch.sigmoid(og)
        return h, c
