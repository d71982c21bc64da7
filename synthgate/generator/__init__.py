"""The DP generator: codecs, network, accountant, synthesizer."""

from synthgate.generator.synthesizer import DPSynthesizer, EpochProgress, FitSummary

__all__ = ["DPSynthesizer", "EpochProgress", "FitSummary"]
