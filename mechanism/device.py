"""Resolve a user's device choice ("auto", "cpu", "cuda", "cuda:N") to a ``torch.device``."""
import torch

from mechanism.errors import MechanismError


def resolve_device(choice: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU.

    Raises:
        MechanismError: for an unknown name, or ``cuda`` on a machine without CUDA.
    """
    choice = choice.strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise MechanismError(f"--device {choice}: CUDA is not available on this machine")
        return torch.device(choice)
    raise MechanismError(f"unknown device {choice!r}: use auto, cpu, cuda or cuda:N")
