"""Simulated CT datasets: the library behind ``kerastrans simulate`` and the demo."""
