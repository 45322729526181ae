"""2-D sine/cosine positional encoding of a patch grid."""
import math

import torch


def positional_encoding_2d(channels: int, height: int, width: int) -> torch.Tensor:
    """Sin/cos encoding of each cell's row and column, shape ``(channels, height, width)``.

    Half the channels encode the row, half the column; each half is sin/cos pairs at
    geometrically spaced frequencies (the Transformer recipe). ``channels`` must be a positive
    multiple of 4.
    """
    if channels <= 0 or channels % 4:
        raise ValueError(f"positional channels must be a positive multiple of 4, got {channels}")
    quarter = channels // 4
    freq = torch.exp(-math.log(10000.0) * torch.arange(quarter, dtype=torch.float64) / quarter)
    rows = torch.arange(height, dtype=torch.float64)[:, None] * freq  # (H, quarter)
    cols = torch.arange(width, dtype=torch.float64)[:, None] * freq   # (W, quarter)
    enc = torch.empty(channels, height, width, dtype=torch.float64)
    enc[0 * quarter:1 * quarter] = rows.sin().T[:, :, None].expand(quarter, height, width)
    enc[1 * quarter:2 * quarter] = rows.cos().T[:, :, None].expand(quarter, height, width)
    enc[2 * quarter:3 * quarter] = cols.sin().T[:, None, :].expand(quarter, height, width)
    enc[3 * quarter:4 * quarter] = cols.cos().T[:, None, :].expand(quarter, height, width)
    return enc.float()
