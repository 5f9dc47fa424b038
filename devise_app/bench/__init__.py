"""Benchmarks: ``devise-app bench index|quality|learn|speed``, which print tables."""
