"""DDPM Explorer's diffusion engine: schedules, denoisers, trainer, samplers, checkpoints.

Importable and testable without gradio or plotly (Ho et al. 2020, "Denoising Diffusion
Probabilistic Models"; timesteps t ∈ {1..T}, t = 0 is the clean data).
"""
